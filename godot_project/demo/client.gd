extends Node
## The demo's game client: logs in over HTTP, lists game servers, joins one over DTLS
## with the server's pinned certificate fingerprint, hands it the login token, plays a few
## moves, posts a score and reads the leaderboard.
##     godot --headless --path godot_project res://demo/client.tscn -- \
##         --backend-url=http://127.0.0.1:PORT --player=alice --password=wonderland
## With --token=T the login is skipped and T is used (the demo shows forged and expired
## tokens being refused); --expect=refused makes a refusal the successful outcome.

var pool: HTTPPool
var dtls: DTLSPeer
var inbox: Array[Dictionary] = []
var args := {}


func _ready() -> void:
	args = DemoArgs.parse()
	pool = HTTPPool.new()
	pool.base_url = args.get("backend-url", "http://127.0.0.1:8080")
	pool.timeout = 5.0
	add_child(pool)
	dtls = DTLSPeer.new()
	add_child(dtls)
	dtls.packet_received.connect(_on_packet)
	# A stuck step must not hang the demo.
	get_tree().create_timer(20.0).timeout.connect(func():
		say("timed out")
		get_tree().quit(1))
	_run.call_deferred()


func _run() -> void:
	var ok := await _flow()
	get_tree().quit(0 if ok else 1)


func _flow() -> bool:
	var player: String = args.get("player", "alice")
	var token: String = args.get("token", "")
	if token == "":
		var login: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/login",
				{"name": player, "password": args.get("password", "")}).completed
		if not login.ok:
			say("login failed: %s" % login.error_message)
			return false
		token = login.json["token"]
		say("logged in as %s" % player)
	else:
		say("using a given token instead of logging in")
	pool.default_headers = {"Authorization": "Bearer " + token}

	var list: HTTPResponse = await pool.fetch("/servers").completed
	var servers: Array = list.json["servers"] if list.ok else []
	if servers.is_empty():
		# A refused token cannot list servers either; it still tries the server directly.
		say("server list: %s" % (list.error_message if not list.ok else "empty"))
		if args.get("server-port", "") == "":
			return false
		servers = [{"name": "direct", "host": "127.0.0.1", "port": int(args["server-port"]), "fingerprint": args.get("fingerprint", "")}]
	var server: Dictionary = servers[0]
	say("joining %s at %s:%d" % [server["name"], server["host"], server["port"]])

	var err := dtls.connect_to_server(server["host"], int(server["port"]), {"pinned_sha256": server["fingerprint"]})
	if err != OK:
		say("cannot connect: error %d" % err)
		return false
	var outcome: Array = await _first_of([dtls.peer_connected, dtls.connection_failed])
	if outcome[0] == 1:
		say("DTLS handshake failed: %s" % outcome[1][0])
		return false
	say("DTLS connected (certificate pinned), sending the token")
	_send({"type": "hello", "token": token})

	var reply := await _next_message()
	if reply.get("type") == "refused":
		say("refused by the server: %s" % reply["reason"])
		return args.get("expect", "") == "refused"
	if reply.get("type") != "welcome":
		say("unexpected reply: %s" % reply)
		return false
	say("welcome, %s" % reply["name"])
	for i in 3:
		_send({"type": "move", "x": i * 10, "y": i * 5})
		var state := await _next_message()
		say("move %d acknowledged: tick %d at (%d, %d)" % [i + 1, state["tick"], state["x"], state["y"]])
	dtls.close()

	var score := 100 + randi() % 400
	var posted: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/scores", {"score": score}).completed
	if not posted.ok:
		say("posting the score failed: %s" % posted.error_message)
		return false
	say("posted score %d: best %d, rank %d" % [score, posted.json["best"], posted.json["rank"]])
	var board: HTTPResponse = await pool.fetch("/leaderboard").completed
	if not board.ok:
		return false
	var line := PackedStringArray()
	for entry: Dictionary in board.json["entries"]:
		line.append("%s %d" % [entry["name"], entry["score"]])
	say("leaderboard: " + ", ".join(line))
	return args.get("expect", "") != "refused"


func _on_packet(_id: int, data: PackedByteArray) -> void:
	var json := JSON.new()
	if json.parse(data.get_string_from_utf8()) == OK and json.data is Dictionary:
		inbox.append(json.data)


func _next_message() -> Dictionary:
	while inbox.is_empty():
		await get_tree().process_frame
	return inbox.pop_front()


## Awaits whichever signal fires first; returns [index, arguments].
func _first_of(signals: Array) -> Array:
	var state := {"hit": -1, "args": []}
	for i in signals.size():
		(signals[i] as Signal).connect(func(a = null, b = null):
			if state["hit"] < 0:
				state["hit"] = i
				state["args"] = [a, b], CONNECT_ONE_SHOT)
	while state["hit"] < 0:
		await get_tree().process_frame
	return [state["hit"], state["args"]]


func _send(msg: Dictionary) -> void:
	dtls.send(1, JSON.stringify(msg).to_utf8_buffer())


func say(text: String) -> void:
	print("[client %s] %s" % [args.get("player", "?"), text])

