extends Node
## Used by tests/agones/sigterm.rs: a stand-in dedicated server in an Agones fleet. It
## finds the sidecar the way a fleet server does (AGONES_SDK_HTTP_PORT), marks itself
## Ready, and on SIGTERM saves through HTTPPool, calls shutdown() and quits within the
## grace period. Prints AGONES_CHECK lines the test reads.
##     AGONES_SDK_HTTP_PORT=PORT godot --headless --path godot_project \
##         res://agones_check/agones_check.tscn -- --save-url=http://127.0.0.1:PORT

var agones: AgonesSDK
var pool: HTTPPool


func _ready() -> void:
	pool = HTTPPool.new()
	pool.base_url = _arg("save-url")
	add_child(pool)
	agones = AgonesSDK.new()
	add_child(agones)
	agones.game_server_changed.connect(func(gs: Dictionary): print("AGONES_CHECK state %s" % gs["status"]["state"]))
	Netkit.shutdown_requested.connect(_on_shutdown_requested)
	var err := Netkit.enable_graceful_shutdown(5.0)
	var res: HTTPResponse = await agones.ready().completed
	print("AGONES_CHECK ready err=%d ok=%s under_agones=%s" % [err, res.ok, agones.is_under_agones()])


func _on_shutdown_requested(grace_seconds: float) -> void:
	print("AGONES_CHECK sigterm grace=%.1f" % grace_seconds)
	# 1. Save while the pod still exists (the outbox of a real game).
	var saved: HTTPResponse = await pool.request(HTTPClient.METHOD_PUT, "/echo?key=agones-save", {"saved": true}).completed
	print("AGONES_CHECK saved %d" % saved.status)
	# 2. Tell Agones the session is over, 3. quit well inside the grace period.
	var res: HTTPResponse = await agones.shutdown().completed
	print("AGONES_CHECK shutdown ok=%s" % res.ok)
	get_tree().quit(0)


func _arg(key: String) -> String:
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--%s=" % key):
			return arg.substr(key.length() + 3)
	return ""
