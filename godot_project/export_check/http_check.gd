extends Node
## Export smoke check: proves that an *exported* build (not the editor) loads the netkit
## extension and can make a real request. rust/tools/tests/export_linux.rs exports this scene with the
## `dedicated_server` preset and runs it as:
##     ./dedicated_server.x86_64 --headless -- --url=http://127.0.0.1:PORT/json
## (the test makes this scene the main scene of its scratch copy of the project: release
## templates refuse a scene path on the command line).
## It GETs `--url`, prints `EXPORT_CHECK ok <status> <key>=<value>` for `--key` (default
## `int`) of the JSON answer and quits with 0; on any failure it prints
## `EXPORT_CHECK fail ...` and quits with 1, so the test never has to guess.

## A stuck request must fail the check rather than hang the exported process.
const TIMEOUT_SEC := 20.0

var _done := false


func _ready() -> void:
	var args := _user_args()
	var url: String = args.get("url", "")
	if url.is_empty():
		_finish(false, "no --url=<address> user argument given")
		return
	var pool := HTTPPool.new()
	pool.timeout = 10.0
	add_child(pool)
	get_tree().create_timer(TIMEOUT_SEC).timeout.connect(
		func() -> void: _finish(false, "no answer within %d s" % TIMEOUT_SEC))
	var res: HTTPResponse = await pool.fetch(url).completed
	if not res.ok:
		_finish(false, "%s %s" % [res.get_error_name(), res.error_message])
		return
	var key: String = args.get("key", "int")
	if not (res.json is Dictionary and res.json.has(key)):
		_finish(false, "status %d but the JSON has no key %s: %s" % [res.status, key, res.text])
		return
	_finish(true, "%d %s=%s" % [res.status, key, res.json[key]])


## Prints the one result line the test looks for, once, and quits with a matching code.
func _finish(ok: bool, detail: String) -> void:
	if _done:
		return
	_done = true
	print("EXPORT_CHECK %s %s" % ["ok" if ok else "fail", detail])
	get_tree().quit(0 if ok else 1)


## `--name=value` user arguments (after `--`) as a Dictionary.
func _user_args() -> Dictionary:
	var out := {}
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--") and "=" in arg:
			var parts := arg.substr(2).split("=", true, 1)
			out[parts[0]] = parts[1]
	return out
