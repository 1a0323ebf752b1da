extends NetkitTest
## HTTPPool's durable outbox (request_durable) against the real test server: its
## /outbox/* endpoints honour Idempotency-Key and can be told to fail
## (rust/test_support/src/http_server/outbox_routes.rs).

const TIMEOUT := 40.0

var http_url := ""
## This test's store file and server bucket, unique per test.
var store := ""
var bucket := ""


func _ready() -> void:
	http_url = env("http-url")
	if http_url == "":
		fail("no --http-url given: run the suite through `cargo test`")
	var tag := "%d-%d" % [Time.get_ticks_usec(), randi()]
	store = "user://outbox_test_%s.redb" % tag
	bucket = "gd-%s" % tag


func after_each() -> void:
	# Free the pools first so the store files are closed, then remove them.
	for child in get_children():
		child.free()
	for file in DirAccess.get_files_at("user://"):
		if file.begins_with(store.get_file()):
			DirAccess.remove_absolute("user://" + file)


func make_pool(path := store) -> HTTPPool:
	var pool := HTTPPool.new()
	pool.base_url = http_url
	pool.retry_base_delay = 0.02
	pool.retry_max_delay = 0.2
	pool.outbox_path = path
	add_child(pool)
	return pool


## A pool that opens its store when added, replaying what it holds.
func make_replaying_pool() -> HTTPPool:
	var pool := HTTPPool.new()
	pool.base_url = http_url
	pool.retry_base_delay = 0.02
	pool.retry_max_delay = 0.2
	pool.outbox_path = store
	pool.outbox_enabled = true
	add_child(pool)
	return pool


func done(task: HTTPTask, timeout_s := 20.0) -> HTTPResponse:
	if task.is_done():
		return task.response
	var args = await wait_signal(task.completed, timeout_s)
	return null if args == null else args[0]


## The server's view of this test's bucket (a plain pool, not the outbox).
func report() -> Dictionary:
	var pool := HTTPPool.new()
	pool.base_url = http_url
	add_child(pool)
	var res := await done(pool.fetch("/outbox/report?bucket=" + bucket))
	pool.queue_free()
	return res.json if res != null and res.ok else {}


func set_mode(code: int) -> void:
	var pool := HTTPPool.new()
	pool.base_url = http_url
	add_child(pool)
	var res := await done(pool.fetch("/outbox/mode?bucket=%s&code=%d" % [bucket, code]))
	assert_true(res != null and res.ok, "mode set")
	pool.queue_free()


func test_a_durable_request_is_awaited_delivered_and_counted() -> void:
	var pool := make_pool()
	var delivered := []
	pool.durable_delivered.connect(func(id, res): delivered.append([id, res]))
	var task := pool.request_durable(HTTPClient.METHOD_POST, "/outbox/save?bucket=" + bucket, {"score": 42})
	assert_eq(pool.get_stats()["outbox_open"], 1, "request_durable opens the outbox")
	var res := await done(task)
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_eq(res.status, 200)
	assert_eq(res.json["replayed"], false)
	assert_eq(delivered.size(), 1, "durable_delivered once")
	if delivered.size() == 1:
		assert_eq(delivered[0][0], task.id, "the signal names the task's entry")
		assert_eq(delivered[0][1], res, "with the same response")
	var key: String = res.json["key"]
	assert_eq(key.length(), 36, "a UUID Idempotency-Key: " + key)
	var seen := await report()
	assert_eq(seen["applied"], {key: 1})
	assert_eq(seen["bodies"][key], "{\"score\":42}")
	var stats := pool.get_stats()
	assert_eq(stats["outbox_pending"], 0)
	assert_eq(stats["outbox_delivered"], 1)
	assert_eq(stats["outbox_dead_letters"], 0)
	assert_ge(Performance.get_custom_monitor("netkit/http_outbox_delivered"), 1)


func test_a_refused_request_becomes_a_dead_letter_that_can_be_dropped() -> void:
	var pool := make_pool()
	var dead := []
	pool.durable_dead_lettered.connect(func(id, res): dead.append([id, res]))
	var task := pool.request_durable(HTTPClient.METHOD_POST, "/status/400", {"score": 1}, ["X-Slot: 3"])
	var res := await done(task)
	if not assert_not_null(res): return
	assert_false(res.ok)
	assert_eq(res.status, 400)
	assert_contains(res.error_message, "given up")
	assert_eq(dead.size(), 1, "durable_dead_lettered once")
	var letters := pool.get_dead_letters()
	if not assert_eq(letters.size(), 1): return
	var letter: Dictionary = letters[0]
	assert_eq(letter["id"], task.id)
	assert_eq(letter["status"], 400)
	assert_eq(letter["method"], "POST")
	assert_true(String(letter["url"]).ends_with("/status/400"), letter["url"])
	assert_eq(letter["body_text"], "{\"score\":1}")
	assert_eq(letter["headers"], {"X-Slot": "3"})
	assert_eq(letter["error"], HTTPResponse.ERR_HTTP_STATUS)
	assert_contains(letter["reason"], "the server answered 400 Bad Request")
	assert_eq(String(letter["reason"]).count("400"), 1, "the status named once: " + letter["reason"])
	assert_eq(letter["answer_text"], "{\"status\":400}", "the backend's answer is kept")
	assert_eq(letter["answer_body"], "{\"status\":400}".to_utf8_buffer())
	assert_gt(letter["created_at"], 1.6e9)
	assert_ge(letter["dead_at"], letter["created_at"])
	assert_eq(pool.get_stats()["outbox_dead_letters"], 1)
	assert_ge(Performance.get_custom_monitor("netkit/http_outbox_dead_letters"), 1)
	assert_true(pool.drop_dead_letter(task.id))
	assert_false(pool.drop_dead_letter(task.id), "gone already")
	assert_eq(pool.get_dead_letters().size(), 0)
	assert_eq(pool.get_stats()["outbox_dead_letters"], 0)


func test_a_dead_letter_is_retried_with_its_key_after_new_credentials() -> void:
	await set_mode(401)
	var pool := make_pool()
	pool.default_headers = {"Authorization": "Bearer expired"}
	var res := await done(pool.request_durable(HTTPClient.METHOD_PUT, "/outbox/save?bucket=" + bucket, {"gold": 5}))
	if not assert_not_null(res): return
	assert_eq(res.status, 401)
	var letters := pool.get_dead_letters()
	if not assert_eq(letters.size(), 1): return
	await set_mode(0)
	pool.default_headers = {"Authorization": "Bearer fresh"}
	var delivered := []
	pool.durable_delivered.connect(func(id, r): delivered.append(id))
	assert_true(pool.retry_dead_letter(letters[0]["id"]))
	assert_true(await wait_until(func() -> bool: return delivered.size() == 1, 15.0), "delivered after the retry")
	assert_eq(delivered, [letters[0]["id"]])
	var seen := await report()
	assert_eq(seen["applied"].keys(), [letters[0]["idempotency_key"]], "the same key")
	assert_eq(seen["authorization"].back(), "Bearer fresh", "the new credentials")
	assert_eq(pool.get_dead_letters().size(), 0)
	assert_false(pool.retry_dead_letter(letters[0]["id"]))


func test_an_outage_is_ridden_out_and_credentials_stay_off_the_disk() -> void:
	await set_mode(503)
	var pool := make_pool()
	pool.default_headers = {"Authorization": "Bearer GD-SECRET-TOKEN-77"}
	var task := pool.request_durable(HTTPClient.METHOD_PUT, "/outbox/save?bucket=" + bucket, {"world": "saved"})
	var seen := {}
	for i in 200:
		seen = await report()
		if seen.get("refused", 0) >= 3:
			break
		await wait_seconds(0.05)
	assert_ge(seen.get("refused", 0), 3, "503s are retried")
	assert_false(task.is_done(), "still pending during the outage")
	assert_eq(pool.get_stats()["outbox_pending"], 1)
	assert_true("Bearer GD-SECRET-TOKEN-77" in seen["authorization"], "default_headers sent: %s" % [seen])
	var bytes := FileAccess.get_file_as_bytes(store)
	assert_gt(bytes.size(), 0, "the store file is readable")
	assert_false(_contains(bytes, "GD-SECRET-TOKEN".to_utf8_buffer()), "the token is not in the store file")
	assert_true(_contains(bytes, "{\"world\":\"saved\"}".to_utf8_buffer()), "the body is")
	await set_mode(0)
	var res := await done(task)
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_eq((await report())["applied"].size(), 1)


func test_a_second_pool_on_the_same_store_gets_a_clear_error() -> void:
	var first := make_pool()
	var ok := await done(first.request_durable(HTTPClient.METHOD_POST, "/outbox/save?bucket=" + bucket, {}))
	assert_true(ok != null and ok.ok)
	var second := make_pool()
	var res := await done(second.request_durable(HTTPClient.METHOD_POST, "/outbox/save?bucket=" + bucket, {}))
	if not assert_not_null(res): return
	assert_eq(res.error, HTTPResponse.ERR_FILE)
	assert_contains(res.error_message, "already open")
	assert_contains(second.get_outbox_error(), "outbox_path")
	assert_eq(second.get_stats()["outbox_open"], 0)


func test_an_unreadable_store_is_set_aside_and_the_pool_keeps_working() -> void:
	var junk := FileAccess.open(store, FileAccess.WRITE)
	for i in 4096:
		junk.store_32(i * 2654435761)
	junk.close()
	expect_error("could not be read")
	var pool := make_pool()
	var res := await done(pool.request_durable(HTTPClient.METHOD_POST, "/outbox/save?bucket=" + bucket, {"after": "corruption"}))
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	var stats := pool.get_stats()
	assert_eq(stats["outbox_set_aside"], 1, "reported in get_stats()")
	assert_eq(stats["outbox_open"], 1)
	assert_eq(pool.get_outbox_error(), "")
	var aside := Array(DirAccess.get_files_at("user://")).filter(
		func(f: String) -> bool: return f.begins_with(store.get_file() + ".corrupt-"))
	assert_eq(aside.size(), 1, "the broken file is kept beside the new one: %s" % [aside])
	assert_eq((await report())["applied"].size(), 1)


func test_bad_input_ends_the_task_with_a_clear_error_and_stores_nothing() -> void:
	var pool := make_pool()
	var bad_url := await done(pool.request_durable(HTTPClient.METHOD_POST, "ftp://example.com/x", {}))
	if not assert_not_null(bad_url): return
	assert_eq(bad_url.error, HTTPResponse.ERR_INVALID_URL)
	var bad_body := await done(pool.request_durable(HTTPClient.METHOD_POST, "/outbox/save?bucket=" + bucket, {"nan": NAN}))
	assert_eq(bad_body.error, HTTPResponse.ERR_INVALID_REQUEST)
	var bad_method := await done(pool.request_durable(99, "/outbox/save?bucket=" + bucket, {}))
	assert_eq(bad_method.error, HTTPResponse.ERR_INVALID_REQUEST)
	assert_eq(pool.get_stats()["outbox_pending"], 0, "nothing stored")
	var no_path := make_pool("")
	var res := await done(no_path.request_durable(HTTPClient.METHOD_POST, "/outbox/save?bucket=" + bucket, {}))
	assert_eq(res.error, HTTPResponse.ERR_FILE)
	assert_contains(res.error_message, "outbox_path is empty")
	# A folder where the file should be: refused, and the folder is left as it was.
	var folder := store + ".d"
	DirAccess.make_dir_recursive_absolute(folder)
	var keep := FileAccess.open(folder + "/keep.txt", FileAccess.WRITE)
	keep.store_string("the game's own file")
	keep.close()
	var at_folder := make_pool(folder)
	res = await done(at_folder.request_durable(HTTPClient.METHOD_POST, "/outbox/save?bucket=" + bucket, {}))
	assert_eq(res.error, HTTPResponse.ERR_FILE)
	assert_contains(res.error_message, "is a folder")
	assert_contains(at_folder.get_outbox_error(), "nothing was renamed")
	assert_eq(FileAccess.get_file_as_string(folder + "/keep.txt"), "the game's own file")
	DirAccess.remove_absolute(folder + "/keep.txt")
	DirAccess.remove_absolute(folder)
	assert_eq((await report()).get("applied", {}).size(), 0, "nothing sent")


## True when `needle` occurs in `hay`.
func _contains(hay: PackedByteArray, needle: PackedByteArray) -> bool:
	var at := hay.find(needle[0])
	while at >= 0 and at + needle.size() <= hay.size():
		if hay.slice(at, at + needle.size()) == needle:
			return true
		at = hay.find(needle[0], at + 1)
	return false


func test_a_handler_may_free_the_pool_and_the_saves_stay_stored() -> void:
	# Freed inside durable_delivered while more events wait in the same frame (queue_free:
	# Godot refuses free() on an object that is emitting): nothing is lost, the next pool
	# on the file replays what was left.
	var pool := make_pool()
	var seen := []
	pool.durable_delivered.connect(func(id, _res):
		seen.append(id)
		pool.queue_free())
	var url := "/outbox/save?bucket=" + bucket
	for i in 5:
		pool.request_durable(HTTPClient.METHOD_POST, url, {"n": i})
	var waited := 0.0
	while is_instance_valid(pool) and waited < TIMEOUT:
		await get_tree().process_frame
		waited += get_process_delta_time()
	assert_false(is_instance_valid(pool), "the handler freed the pool")
	assert_ge(seen.size(), 1, "the handler ran")
	assert_le(seen.size(), 5, "each entry at most once: %s" % [seen])
	# Freed inside durable_dead_lettered, too.
	var second := make_pool()
	var dead := []
	second.durable_dead_lettered.connect(func(id, _res):
		dead.append(id)
		second.queue_free())
	second.request_durable(HTTPClient.METHOD_POST, "/status/404", {})
	second.request_durable(HTTPClient.METHOD_POST, "/status/410", {})
	waited = 0.0
	while is_instance_valid(second) and waited < TIMEOUT:
		await get_tree().process_frame
		waited += get_process_delta_time()
	assert_false(is_instance_valid(second), "the dead-letter handler freed the pool")
	assert_ge(dead.size(), 1, "the handler ran")
	assert_le(dead.size(), 2, "each entry at most once: %s" % [dead])
	# Everything the backend has, it has once; the rest is still in the store.
	var third := make_replaying_pool()
	var left := 0.0
	while third.get_stats()["outbox_pending"] > 0 and left < TIMEOUT:
		await get_tree().process_frame
		left += get_process_delta_time()
	var applied: Dictionary = (await report())["applied"]
	assert_eq(applied.size(), 5, "all five saves arrived: %s" % [applied])
	for key in applied:
		assert_eq(applied[key], 1, "once each")
	assert_eq(third.get_dead_letters().size(), 2, "both refusals are dead letters")


func test_an_awaiting_coroutine_may_free_the_pool() -> void:
	var pool := make_pool()
	var url := "/outbox/save?bucket=" + bucket
	var first := pool.request_durable(HTTPClient.METHOD_POST, url, {"n": 1})
	var other := pool.request_durable(HTTPClient.METHOD_POST, url, {"n": 2})
	var res := await done(first)
	assert_true(res != null and res.ok, "delivered")
	pool.free()
	var late := await done(other)
	if not assert_not_null(late, "the other task still ends exactly once"): return
	assert_true(late.ok or late.error == HTTPResponse.ERR_CANCELLED, late.error_message)


func test_pools_on_one_path_opened_and_freed_over_and_over_lose_nothing() -> void:
	var url := "/outbox/save?bucket=" + bucket
	for round in 20:
		var a := make_pool()
		a.request_durable(HTTPClient.METHOD_POST, url, {"round": round})
		assert_eq(a.get_stats()["outbox_open"], 1, "round %d opens: %s" % [round, a.get_outbox_error()])
		a.free()
		# A second pool at once, while the first one's attempts may still wind down.
		var b := make_pool()
		b.request_durable(HTTPClient.METHOD_POST, url, {"round": round, "b": true})
		assert_eq(b.get_stats()["outbox_open"], 1, "round %d reopens: %s" % [round, b.get_outbox_error()])
		b.free()
	var last := make_replaying_pool()
	var waited := 0.0
	while last.get_stats()["outbox_pending"] > 0 and waited < TIMEOUT:
		await get_tree().process_frame
		waited += get_process_delta_time()
	assert_eq(last.get_stats()["outbox_pending"], 0)
	var applied: Dictionary = (await report())["applied"]
	assert_eq(applied.size(), 40, "every save of every round arrived once")
