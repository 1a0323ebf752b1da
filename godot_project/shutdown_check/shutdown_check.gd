extends Node
## Used by tests/addon/shutdown_signal.rs: a stand-in dedicated server that saves through
## HTTPPool when SIGTERM arrives, then quits. Prints SHUTDOWN_CHECK lines the test reads.
## Arguments: --url=URL --key=K [--grace=SECONDS (5)] [--hang: the handler never quits].

var pool: HTTPPool
## A scene part the handler frees, with a request still running in its pool: freeing
## from a shutdown handler is the common case (the game tears its world down).
var doomed: Node
var doomed_task: HTTPTask


func _ready() -> void:
	var url := ""
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--url="):
			url = arg.substr(6)
	pool = HTTPPool.new()
	pool.base_url = url
	add_child(pool)
	doomed = Node.new()
	add_child(doomed)
	var doomed_pool := HTTPPool.new()
	doomed_pool.base_url = url
	doomed.add_child(doomed_pool)
	doomed_task = doomed_pool.fetch("/delay?ms=20000")
	Netkit.shutdown_requested.connect(_on_shutdown_requested)
	var grace := 5.0
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--grace="):
			grace = float(arg.substr(8))
	var err := Netkit.enable_graceful_shutdown(grace)
	print("SHUTDOWN_CHECK ready %d" % err)


func _on_shutdown_requested(grace_seconds: float) -> void:
	print("SHUTDOWN_CHECK requested grace=%.1f main_thread=%s" % [grace_seconds, OS.get_thread_caller_id() == OS.get_main_thread_id()])
	if "--hang" in OS.get_cmdline_user_args():
		# A game whose save never finishes: netkit quits for it when the grace ends.
		return
	# Call back into the emitter, and free a node with work in flight, inside the handler.
	var requested := Netkit.is_shutdown_requested()
	doomed.free()
	var cancelled: HTTPResponse = await doomed_task.completed if not doomed_task.is_done() else doomed_task.response
	print("SHUTDOWN_CHECK handler callback=%s freed_task=%s" % [requested, cancelled.get_error_name()])
	var res: HTTPResponse = await pool.request(HTTPClient.METHOD_PUT, "/echo?key=" + _key(), {"saved": true}).completed
	print("SHUTDOWN_CHECK saved %d" % res.status)
	# A request still awaited when the game quits: its coroutine ends with ERR_CANCELLED
	# as the pool is freed with the tree, instead of being left (and reported as leaked).
	_awaited_at_quit()
	get_tree().quit(0)


func _awaited_at_quit() -> void:
	var res: HTTPResponse = await pool.fetch("/delay?ms=20000").completed
	print("SHUTDOWN_CHECK awaited at quit: %s" % res.get_error_name())


func _key() -> String:
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--key="):
			return arg.substr(6)
	return "shutdown"
