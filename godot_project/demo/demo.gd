extends Node
## The HTTPPool demo: logs in, posts a score and shows the leaderboard against the demo
## backend that `cargo run --bin demo` starts. Run headless:
##     godot --headless --path godot_project res://demo/demo.tscn -- --backend-url=http://127.0.0.1:PORT
## Prints each step and quits with 0 when every step worked, 1 otherwise.

var pool: HTTPPool


func _ready() -> void:
	var args := _user_args()
	pool = HTTPPool.new()
	pool.base_url = args.get("backend-url", "http://127.0.0.1:8080")
	pool.timeout = 5.0
	add_child(pool)
	_run.call_deferred(args.get("player", "alice"), args.get("password", "wonderland"))


func _run(player: String, password: String) -> void:
	var ok := await _flow(player, password)
	print("[demo] %s" % ("every step succeeded" if ok else "a step FAILED"))
	get_tree().quit(0 if ok else 1)


func _flow(player: String, password: String) -> bool:
	print("[demo] logging in as %s at %s" % [player, pool.base_url])
	var login: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/login",
			{"name": player, "password": password}).completed
	if not login.ok:
		print("[demo] login failed: %s %s" % [login.error_message, login.text])
		return false
	var token: String = login.json["token"]
	print("[demo] logged in: token valid for %d s (request took %.1f ms)" % [login.json["expires_in"], login.elapsed_ms])
	pool.default_headers = {"Authorization": "Bearer " + token}

	var score := 100 + randi() % 400
	var posted: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/scores", {"score": score}).completed
	if not posted.ok:
		print("[demo] posting the score failed: %s" % posted.error_message)
		return false
	print("[demo] posted score %d: best %d, rank %d" % [score, posted.json["best"], posted.json["rank"]])

	# Profile and leaderboard in parallel: the pool runs both on its shared connections.
	var me_task := pool.fetch("/me")
	var board_task := pool.fetch("/leaderboard")
	var me: HTTPResponse = await me_task.completed
	var board: HTTPResponse = board_task.response if board_task.is_done() else await board_task.completed
	if not me.ok or not board.ok:
		print("[demo] reading profile or leaderboard failed: %s %s" % [me.error_message, board.error_message])
		return false
	print("[demo] profile: %s, best score %d" % [me.json["name"], me.json["best_score"]])
	print("[demo] leaderboard:")
	var rank := 1
	for entry: Dictionary in board.json["entries"]:
		print("[demo]   %2d. %-8s %d" % [rank, entry["name"], entry["score"]])
		rank += 1

	var refused: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/login",
			{"name": player, "password": "not-the-password"}).completed
	print("[demo] a wrong password is refused: %d %s (%s)" % [refused.status, refused.json["error"], refused.get_error_name()])
	return refused.status == 401


func _user_args() -> Dictionary:
	var out := {}
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--") and arg.contains("="):
			out[arg.substr(2, arg.find("=") - 2)] = arg.substr(arg.find("=") + 1)
	return out
