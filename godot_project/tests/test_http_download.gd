extends NetkitTest
## HTTPPool.download() and HTTPDownload against the real test server's /download endpoint
## (rust/test_support/src/http_server/transfer_routes.rs): resume after a dropped connection,
## SHA-256 checks, a server without range support, cancellation, bad input, and handlers
## that free the pool. Sizes are moderate here; tests/http/transfer.rs runs the 50 MiB case.

const TIMEOUT := 90.0
const MB := 1024 * 1024
const DIR := "user://netkit_test_downloads"

var http_url := ""


func _ready() -> void:
	http_url = env("http-url")
	if http_url == "":
		fail("no --http-url given: run the suite through `cargo test`")
	DirAccess.make_dir_recursive_absolute(DIR)


func after_each() -> void:
	for name in DirAccess.get_files_at(DIR):
		DirAccess.remove_absolute(DIR.path_join(name))


func make_pool(props := {}) -> HTTPPool:
	return http_pool(http_url, {"retry_base_delay": 0.02}.merged(props, true)) as HTTPPool


func finished(dl: HTTPDownload, timeout_s := 60.0) -> HTTPResponse:
	if dl.is_done():
		return dl.response
	var args = await wait_signal(dl.completed, timeout_s)
	return null if args == null else args[0]


func get_json(pool: HTTPPool, path: String) -> Variant:
	var task := pool.fetch(path)
	var res: HTTPResponse = task.response if task.is_done() else (await wait_signal(task.completed))[0]
	return res.json


func test_a_dropped_download_resumes_with_range_and_matches_its_sha256() -> void:
	var pool := make_pool({"max_retries": 3})
	var size := 8 * MB
	var key := fresh_key("gd-resume")
	var expected: String = (await get_json(pool, "/download/sha256?bytes=%d" % size))["sha256"]
	var file := DIR.path_join("pack.bin")
	var dl := pool.download("/download?bytes=%d&drop_at=%d&key=%s" % [size, size * 2 / 5, key], file, expected)
	assert_eq(dl.file_path, file)
	var seen := []
	dl.progress.connect(func(done: int, total: int): seen.append([done, total, Engine.get_process_frames()]))
	var completed_after := []
	dl.completed.connect(func(_res): completed_after.append(seen.size()))
	var res := await finished(dl)
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_eq(res.status, 206, "the last answer continued the file")
	assert_eq(dl.resumes, 1)
	assert_eq(dl.restarts, 0)
	assert_eq(dl.sha256, expected)
	assert_eq(FileAccess.get_sha256(file), expected, "the file on disk is the server's content")
	assert_false(FileAccess.file_exists(file + ".part"), "no part file left")
	assert_false(FileAccess.file_exists(file + ".part.meta"), "no sidecar left")
	assert_eq(dl.bytes_received, size)
	assert_eq(dl.total_bytes, size)
	# Progress: at most one per frame, never backwards, the last one before `completed`
	# says the whole file.
	assert_gt(seen.size(), 1, "progress was reported along the way")
	for i in range(1, seen.size()):
		if seen[i][2] <= seen[i - 1][2] or seen[i][0] < seen[i - 1][0]:
			fail("progress %s after %s: two in one frame, or backwards" % [seen[i], seen[i - 1]])
			break
	assert_eq(seen[-1], [size, size, seen[-1][2]])
	assert_eq(completed_after, [seen.size()], "completed came after the last progress")
	var ranges: Array = await get_json(pool, "/transfer/log?key=" + key)
	assert_eq(ranges.size(), 2, str(ranges))
	assert_eq(ranges[0], "range=-;if-range=-;status=200")
	assert_true(String(ranges[1]).begins_with("range=bytes="), str(ranges))
	assert_true(String(ranges[1]).ends_with(";if-range=\"dl-%d\";status=206" % size), str(ranges))


func test_a_wrong_hash_ends_with_a_clear_error_and_no_file() -> void:
	var pool := make_pool()
	var file := DIR.path_join("wrong.bin")
	var wrong := "ab".repeat(32)
	var res := await finished(pool.download("/download?bytes=%d" % MB, file, wrong))
	if not assert_not_null(res): return
	assert_eq(res.error, HTTPResponse.ERR_HASH_MISMATCH, res.error_message)
	assert_eq(res.get_error_name(), "ERR_HASH_MISMATCH")
	assert_contains(res.error_message, "not the expected " + wrong)
	assert_false(FileAccess.file_exists(file), "nothing in place")
	assert_false(FileAccess.file_exists(file + ".part"), "the part file was removed")


func test_a_server_without_range_support_restarts_and_still_ends_correct() -> void:
	var pool := make_pool({"max_retries": 3})
	var size := 3 * MB
	var key := fresh_key("gd-noranges")
	var expected: String = (await get_json(pool, "/download/sha256?bytes=%d" % size))["sha256"]
	var file := DIR.path_join("noranges.bin")
	var dl := pool.download("/download?bytes=%d&drop_at=%d&ranges=0&key=%s" % [size, MB, key], file, expected)
	var res := await finished(dl)
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_eq(res.status, 200)
	assert_eq([dl.resumes, dl.restarts], [0, 1])
	assert_eq(FileAccess.get_sha256(file), expected)
	var ranges: Array = await get_json(pool, "/transfer/log?key=" + key)
	assert_true(String(ranges[1]).begins_with("range=bytes=") and String(ranges[1]).ends_with("status=200"), str(ranges))


func test_cancel_from_a_progress_handler_keeps_the_part_file() -> void:
	var pool := make_pool()
	var file := DIR.path_join("cancelled.bin")
	var dl := pool.download("/download?bytes=%d" % (500 * MB), file)
	dl.progress.connect(func(done: int, _total: int):
		if done > MB:
			dl.cancel())
	var res := await finished(dl)
	if not assert_not_null(res): return
	assert_eq(res.error, HTTPResponse.ERR_CANCELLED, res.error_message)
	assert_contains(res.error_message, "download() again resumes")
	assert_true(FileAccess.file_exists(file + ".part"), "kept for a resume")
	assert_false(FileAccess.file_exists(file))
	# The next download of the same URL and file continues it; cancel(true) removes it.
	var kept := FileAccess.open(file + ".part", FileAccess.READ).get_length()
	assert_gt(kept, 0)
	var again := pool.download("/download?bytes=%d" % (500 * MB), file)
	again.progress.connect(func(done: int, _total: int):
		if done > kept + MB:
			again.cancel(true))
	res = await finished(again)
	assert_eq(res.error, HTTPResponse.ERR_CANCELLED)
	assert_eq(again.resumes, 1, "the second download continued the kept part")
	assert_false(FileAccess.file_exists(file + ".part"), "cancel(true) removed it")


func test_bad_input_ends_on_a_later_frame_with_a_clear_error() -> void:
	var pool := make_pool({"max_download_bytes": 1000})
	var cases := [
		[pool.download("/download", DIR.path_join("x.bin"), "not-hex"), HTTPResponse.ERR_INVALID_REQUEST, "64 hexadecimal digits"],
		[pool.download("/download", ""), HTTPResponse.ERR_FILE, "file_path is empty"],
		[pool.download("ftp://x/y", DIR.path_join("x.bin")), HTTPResponse.ERR_INVALID_URL, "ftp"],
		[pool.download("/download?bytes=5000", DIR.path_join("big.bin")), HTTPResponse.ERR_BODY_TOO_LARGE, "max_download_bytes"],
		[pool.download("/download", DIR.path_join("x.bin"), "", PackedStringArray(["range: bytes=0-9"])), HTTPResponse.ERR_INVALID_REQUEST, "sets Range, If-Range and Accept-Encoding itself"],
	]
	for c in cases:
		assert_false((c[0] as HTTPDownload).is_done(), "never answered inside the call")
	for c in cases:
		var res := await finished(c[0])
		if not assert_not_null(res): return
		assert_eq(res.error, c[1], res.error_message)
		assert_contains(res.error_message, c[2])
	# Two downloads of one file at once: the second is refused, the first goes on. The first
	# is 8 GiB so that it is still running when the second has waited out the 2 s netkit
	# gives a holder to let go (500 MB could finish within that on a quiet machine); it is
	# cancelled after a few seconds, so only those seconds' bytes touch the disk.
	var file := DIR.path_join("twice.bin")
	pool.max_download_bytes = 1 << 40
	var first := pool.download("/download?bytes=%d" % (8192 * MB), file)
	assert_true(await wait_until(func(): return first.bytes_received > 0, 20.0), "the first one runs")
	var second := pool.download("/download?bytes=%d" % (2 * MB), file)
	var r2 := await finished(second)
	assert_eq(r2.error, HTTPResponse.ERR_FILE, r2.error_message)
	assert_contains(r2.error_message, "already being downloaded")
	assert_false(first.is_done(), "the first one still runs")
	first.cancel(true)
	var r1 := await finished(first)
	assert_eq(r1.error, HTTPResponse.ERR_CANCELLED, r1.error_message)


func test_the_pool_freed_from_a_progress_handler_ends_the_download_without_a_crash() -> void:
	for how in ["free", "queue_free"]:
		var holder := Node.new()
		add_child(holder)
		var pool := HTTPPool.new()
		pool.base_url = http_url
		holder.add_child(pool)
		var dl := pool.download("/download?bytes=%d" % (500 * MB), DIR.path_join("freed.bin"))
		var calls := [0]
		dl.progress.connect(func(_done: int, _total: int):
			calls[0] += 1
			if calls[0] == 1:
				if how == "free":
					pool.free()
				else:
					pool.queue_free())
		var res := await finished(dl, 30.0)
		if not assert_not_null(res, how): return
		assert_eq(res.error, HTTPResponse.ERR_CANCELLED, how)
		assert_false(is_instance_valid(pool), how)
		var progress_after: int = calls[0]
		await wait_frames(5)
		assert_eq(calls[0], progress_after, "%s: nothing after the pool went" % how)
		holder.free()


func test_a_completed_handler_may_free_the_pool() -> void:
	var pool := make_pool()
	var dl := pool.download("/download?bytes=1000", DIR.path_join("small.bin"))
	var state := {"ok": false}
	dl.completed.connect(func(res: HTTPResponse):
		state["ok"] = res.ok
		pool.free())
	await wait_until(func(): return dl.is_done(), 20.0)
	assert_true(state["ok"])
	assert_false(is_instance_valid(pool))
	assert_eq(FileAccess.get_file_as_bytes(DIR.path_join("small.bin")).size(), 1000)
