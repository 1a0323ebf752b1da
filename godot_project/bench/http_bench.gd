## One HTTP benchmark run: N GETs of a 1 KB JSON body through one client, each body
## parsed into a Dictionary that this script reads one key from. Prints one line
## `BENCH {json}` and quits, so the Rust driver (rust/tools/bench) can collect figures.
##
## Arguments after `--`: --client=httprequest|httprequest_threads|httppool,
## --url=http://127.0.0.1:PORT/json, --requests=5000, --concurrency=8, --timeout=120.
##
## Main-thread cost: each frame is timed from SceneTree.process_frame (emitted at the
## start of the process step) to a call deferred from this node's _process, which runs
## last (process_priority 1000) and whose deferred call runs in the message-queue flush
## after all nodes processed, so the span holds HTTPRequest polling, HTTPPool dispatch,
## the completion handlers (threaded HTTPRequest delivers through deferred calls) and the
## request submission, but not the idle sleep Godot adds between headless frames.
## (Performance.TIME_PROCESS cannot be used: Godot updates it once a second, with the
## largest frame of that second.) The sum over the run divided by the responses is the
## cost per response; the largest span after the first frame is the longest frame; the
## first frame, which issues the requests, is reported on its own.
extends Node

const Proc := preload("res://bench/proc_info.gd")

var client := ""
var url := ""
var total := 5000
var concurrency := 8
var timeout_usec := 120_000_000

var issued := 0
var done := 0
var ok := 0
var failed := 0
var first_error := ""
var key_sum := 0
var handler_usec := 0
var submit_usec := 0

var started := false
var finished := false
var start_usec := 0
var end_usec := 0
var frames := 0
var process_usec_total := 0
var max_frame_usec := 0
var issue_frame_usec := 0
var frame_begin_usec := 0
var pool: Node = null
var path := "/json"


func _ready() -> void:
	for arg in OS.get_cmdline_user_args():
		var kv: PackedStringArray = arg.trim_prefix("--").split("=", true, 1)
		if kv.size() != 2:
			continue
		match kv[0]:
			"client": client = kv[1]
			"url": url = kv[1]
			"requests": total = int(kv[1])
			"concurrency": concurrency = int(kv[1])
			"timeout": timeout_usec = int(kv[1]) * 1_000_000
	# Runs last among the nodes, so _process sees the frame's work done by the others.
	process_priority = 1000
	get_tree().process_frame.connect(_on_frame_begin)
	if url.is_empty() or total <= 0 or concurrency <= 0:
		_report("bad arguments: need --client, --url, --requests > 0, --concurrency > 0")
		return
	match client:
		"httprequest", "httprequest_threads":
			for i in concurrency:
				var r := HTTPRequest.new()
				r.use_threads = client == "httprequest_threads"
				r.request_completed.connect(_on_httprequest_done.bind(r))
				add_child(r)
		"httppool":
			if not ClassDB.class_exists("HTTPPool"):
				_report("the HTTPPool class is not registered: the netkit extension did not load")
				return
			var scheme_end := url.find("://") + 3
			var slash := url.find("/", scheme_end)
			pool = ClassDB.instantiate("HTTPPool")
			pool.base_url = url.substr(0, slash)
			path = url.substr(slash)
			pool.max_concurrent = concurrency
			pool.max_queued = total
			pool.request_completed.connect(_on_pool_done)
			add_child(pool)
		_:
			_report("unknown --client=%s" % client)
			return


func _process(_delta: float) -> void:
	if finished:
		return
	if not started:
		# Starts in the first frame, after every node entered the tree.
		started = true
		start_usec = Time.get_ticks_usec()
		var t0 := Time.get_ticks_usec()
		if pool != null:
			for i in total:
				pool.fetch(path)
			issued = total
		else:
			for r in get_children():
				_issue(r)
		submit_usec = Time.get_ticks_usec() - t0
	_end_frame.call_deferred()


func _on_frame_begin() -> void:
	frame_begin_usec = Time.get_ticks_usec()


func _end_frame() -> void:
	if finished or frame_begin_usec == 0:
		return
	var frame_usec := Time.get_ticks_usec() - frame_begin_usec
	frames += 1
	process_usec_total += frame_usec
	if frames == 1:
		issue_frame_usec = frame_usec
	else:
		max_frame_usec = maxi(max_frame_usec, frame_usec)
	if done >= total:
		_finish("")
	elif Time.get_ticks_usec() - start_usec > timeout_usec:
		_finish("timed out with %d of %d responses" % [done, total])


func _issue(r: HTTPRequest) -> void:
	if issued >= total:
		return
	issued += 1
	var err := r.request(url)
	if err != OK:
		_count_failure("HTTPRequest.request returned %s" % error_string(err))


func _on_httprequest_done(result: int, code: int, _headers: PackedStringArray,
		body: PackedByteArray, r: HTTPRequest) -> void:
	var t0 := Time.get_ticks_usec()
	if result == HTTPRequest.RESULT_SUCCESS and code == 200:
		_read(JSON.parse_string(body.get_string_from_utf8()))
	else:
		_count_failure("HTTPRequest result %d, status %d" % [result, code])
	_issue(r)
	handler_usec += Time.get_ticks_usec() - t0


func _on_pool_done(_task_id: int, res: Object) -> void:
	var t0 := Time.get_ticks_usec()
	if res.ok:
		_read(res.json)
	else:
		_count_failure("HTTPPool: %s" % res.error_message)
	handler_usec += Time.get_ticks_usec() - t0


func _read(data: Variant) -> void:
	_count_done()
	if data is Dictionary and data.has("id"):
		ok += 1
		key_sum += int(data["id"])
	else:
		failed += 1
		if first_error.is_empty():
			first_error = "the body did not parse into a Dictionary with an id"


func _count_failure(why: String) -> void:
	_count_done()
	failed += 1
	if first_error.is_empty():
		first_error = why


## The run ends at the last response, not at the end of its frame.
func _count_done() -> void:
	done += 1
	if done == total:
		end_usec = Time.get_ticks_usec()


func _finish(error: String) -> void:
	finished = true
	if end_usec == 0:
		end_usec = Time.get_ticks_usec()
	if pool != null:
		pool.cancel_all()
	_report(error)


func _report(error: String) -> void:
	finished = true
	var elapsed := maxi(end_usec - start_usec, 1)
	var line := {
		"client": client,
		"requests": total,
		"concurrency": concurrency,
		"done": done,
		"ok": ok,
		"failed": failed,
		"first_error": first_error,
		"error": error,
		"key_sum": key_sum,
		"elapsed_usec": elapsed,
		"requests_per_sec": float(ok) * 1_000_000.0 / float(elapsed),
		"frames": frames,
		"process_usec_total": process_usec_total,
		"main_usec_per_response": float(process_usec_total) / float(maxi(done, 1)),
		"handler_usec_per_response": float(handler_usec) / float(maxi(done, 1)),
		"submit_usec": submit_usec,
		"issue_frame_usec": issue_frame_usec,
		"max_frame_usec": max_frame_usec,
		"vm_hwm_kb": Proc.status_kb("VmHWM:"),
		"static_peak_bytes": OS.get_static_memory_peak_usage(),
		"netkit_library": Proc.mapped_library("libnetkit"),
		"godot_version": Engine.get_version_info().get("string", ""),
		"debug_build": OS.is_debug_build(),
	}
	print("BENCH ", JSON.stringify(line))
	get_tree().quit(0 if error.is_empty() else 1)
