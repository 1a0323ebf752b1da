extends Node
## Used by tests/outbox/processes.rs: a stand-in dedicated server whose saves go through
## HTTPPool's durable outbox while the backend is down, then is killed (SIGKILL) or asked
## to stop (SIGTERM), and a later run that replays what the store holds. Prints
## OUTBOX_CHECK lines the test reads.
##
## Arguments: --url=BASE --store=PATH --bucket=B --count=N --mode=save|replay|sigterm
## [--sync=false] (sets outbox_sync_write: the entry is committed in the background, and
## at the latest when the pool is freed on quit)
## - save: makes N durable saves, prints `OUTBOX_CHECK saved N pending=P`, keeps running.
## - sigterm: on Netkit.shutdown_requested makes one durable save, prints
##   `OUTBOX_CHECK stored pending=P`, and quits at once.
## - stream: opens the outbox (outbox_enabled), prints `OUTBOX_CHECK streaming
##   set_aside=S`, then makes three durable saves a frame, body `{"save":N,"run":RUN}`
##   (--run=RUN), printing `OUTBOX_CHECK returned RUN-N` after each call returned, until
##   killed.
## - drain: opens the outbox, prints `OUTBOX_CHECK drained set_aside=S` once nothing is
##   pending, and quits.
## - replay: opens the outbox (outbox_enabled), prints `OUTBOX_CHECK replaying pending=P`,
##   then `OUTBOX_CHECK delivered N` once N entries were delivered, and quits.

var pool: HTTPPool
var args := {}
var delivered := 0
var streamed := 0
var streaming := false
var draining := false


func _ready() -> void:
	for arg in OS.get_cmdline_user_args():
		var parts := arg.trim_prefix("--").split("=", true, 1)
		args[parts[0]] = parts[1] if parts.size() > 1 else ""
	pool = HTTPPool.new()
	pool.base_url = args.get("url", "")
	pool.outbox_path = args.get("store", "")
	pool.retry_base_delay = 0.05
	pool.retry_max_delay = 0.5
	pool.default_headers = {"Authorization": "Bearer process-token"}
	pool.outbox_sync_write = args.get("sync", "true") != "false"
	pool.durable_delivered.connect(_on_delivered)
	var mode: String = args.get("mode", "")
	if mode in ["replay", "stream", "drain"]:
		pool.outbox_enabled = true
	add_child(pool)
	match mode:
		"save":
			var count := int(args.get("count", "1"))
			for i in count:
				pool.request_durable(HTTPClient.METHOD_POST, _save_path(), {"save": i, "run": "killed"})
			print("OUTBOX_CHECK saved %d pending=%d" % [count, pool.get_stats()["outbox_pending"]])
		"sigterm":
			Netkit.shutdown_requested.connect(_on_shutdown_requested)
			print("OUTBOX_CHECK ready %d" % Netkit.enable_graceful_shutdown(5.0))
		"stream":
			print("OUTBOX_CHECK streaming set_aside=%d" % pool.get_stats()["outbox_set_aside"])
			streaming = true
		"drain":
			draining = true
		"replay":
			print("OUTBOX_CHECK replaying pending=%d" % pool.get_stats()["outbox_pending"])
			_check_done()
		_:
			print("OUTBOX_CHECK unknown mode '%s'" % mode)
			get_tree().quit(2)


func _process(_delta: float) -> void:
	if streaming:
		for i in 3:
			var tag := "%s-%d" % [args.get("run", ""), streamed]
			var task := pool.request_durable(HTTPClient.METHOD_POST, _save_path(), {"save": streamed, "run": args.get("run", "")})
			if task.is_done() and not task.response.ok:
				print("OUTBOX_CHECK refused %s %s" % [tag, task.response.error_message])
			else:
				print("OUTBOX_CHECK returned " + tag)
			streamed += 1
	elif draining and pool.get_stats()["outbox_pending"] == 0:
		draining = false
		print("OUTBOX_CHECK drained set_aside=%d" % pool.get_stats()["outbox_set_aside"])
		get_tree().quit(0)


func _save_path() -> String:
	return "/outbox/save?bucket=" + args.get("bucket", "")


func _on_shutdown_requested(_grace: float) -> void:
	pool.request_durable(HTTPClient.METHOD_PUT, _save_path(), {"world": "final", "run": "sigterm"})
	print("OUTBOX_CHECK stored pending=%d" % pool.get_stats()["outbox_pending"])
	get_tree().quit(0)


func _on_delivered(_id: int, _response: HTTPResponse) -> void:
	delivered += 1
	_check_done()


func _check_done() -> void:
	if args.get("mode", "") != "replay":
		return
	if delivered >= int(args.get("count", "1")):
		print("OUTBOX_CHECK delivered %d" % delivered)
		get_tree().quit(0)
