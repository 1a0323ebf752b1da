extends Node
## The demo's game client: logs in over HTTP, lists game servers, joins one with
## SceneMultiplayer over DTLSMultiplayerPeer (the server's certificate pinned), hands the
## login token over with `send_auth`, waits for the server's spawner to spawn its player,
## moves it with `@rpc` calls and watches the synchronizer bring the new position back,
## then posts a score and reads the leaderboard.
##     godot --headless --path godot_project res://demo/client.tscn -- \
##         --backend-url=http://127.0.0.1:PORT --player=alice --password=wonderland
## With --token=T the login is skipped and T is used (the demo shows forged and expired
## tokens being refused); --expect=refused makes a refusal the successful outcome.

const World := preload("res://demo/world.gd")

var pool: HTTPPool
var peer: DTLSMultiplayerPeer
var mp: SceneMultiplayer
var world: World
var args := {}
var token := ""
## What the server answered through `send_auth`: "welcome:NAME" or "refused:REASON".
var auth_reply := ""


func _ready() -> void:
	args = DemoArgs.parse()
	pool = HTTPPool.new()
	pool.base_url = args.get("backend-url", "http://127.0.0.1:8080")
	pool.timeout = 5.0
	add_child(pool)
	mp = SceneMultiplayer.new()
	mp.auth_callback = _on_auth_reply
	mp.peer_authenticating.connect(_on_authenticating)
	# Before the world enters the tree: its spawner registers with the multiplayer it finds.
	get_tree().set_multiplayer(mp, get_path())
	world = World.new()
	add_child(world)
	world.notice_received.connect(func(text: String): say("server says: %s" % text))
	# A stuck step must not hang the demo.
	get_tree().create_timer(20.0).timeout.connect(func():
		say("timed out")
		get_tree().quit(1))
	_run.call_deferred()


func _run() -> void:
	var ok := await _flow()
	_leave()
	get_tree().quit(0 if ok else 1)


func _flow() -> bool:
	var player_name: String = args.get("player", "alice")
	token = args.get("token", "")
	if token == "":
		var login: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/login",
				{"name": player_name, "password": args.get("password", "")}).completed
		if not login.ok:
			say("login failed: %s" % login.error_message)
			return false
		token = login.json["token"]
		say("logged in as %s" % player_name)
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

	peer = DTLSMultiplayerPeer.new()
	var err := peer.create_client(server["host"], int(server["port"]), {"pinned_sha256": server["fingerprint"]})
	if err != OK:
		say("cannot connect: error %d" % err)
		return false
	mp.multiplayer_peer = peer
	# The token goes out in _on_authenticating; the server answers in _on_auth_reply.
	var outcome: Array = await _first_of([mp.connected_to_server, mp.connection_failed, mp.server_disconnected, mp.peer_authentication_failed])
	if auth_reply.begins_with("refused:"):
		say("refused by the server: %s" % auth_reply.trim_prefix("refused:"))
		return args.get("expect", "") == "refused"
	# On a lossy path the server's refusal can end the session before its reply arrives;
	# the disconnect reason still says the server refused this peer at authentication.
	if outcome[0] != 0 and peer.get_last_disconnect_reason().contains("refused this peer during authentication"):
		say("refused by the server: %s" % peer.get_last_disconnect_reason())
		return args.get("expect", "") == "refused"
	if outcome[0] != 0:
		say("could not join: %s" % peer.get_last_disconnect_reason())
		return false
	say("authenticated and joined as peer %d" % mp.get_unique_id())

	var me := mp.get_unique_id()
	if not await _until(func(): return world.player_of(me) != null, 10.0):
		say("the server's spawner never spawned my player")
		return false
	var player := world.player_of(me)
	say("spawned: player %s (%s) at (%d, %d)" % [player.name, player.get_meta("player_name"), player.position.x, player.position.y])
	for i in 3:
		var to := Vector2((i + 1) * 10, (i + 1) * 5)
		world.move.rpc_id(1, to.x, to.y)
		var ack: Array = await world.move_acknowledged
		say("move %d acknowledged by RPC: tick %d at (%d, %d)" % [i + 1, ack[0], ack[1].x, ack[1].y])
		if not await _until(func(): return player.position == to, 5.0):
			say("the synchronizer did not bring position %s (still %s)" % [to, player.position])
			return false
		say("synchronized position (%d, %d)" % [player.position.x, player.position.y])
	_leave()

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


## SceneMultiplayer asks for authentication data: the login token, sent with `send_auth`.
func _on_authenticating(id: int) -> void:
	say("DTLS connected (certificate pinned), sending the token with send_auth")
	mp.send_auth(id, token.to_utf8_buffer())


## The server's answer through `send_auth`; the client completes its side only on a welcome.
func _on_auth_reply(id: int, data: PackedByteArray) -> void:
	auth_reply = data.get_string_from_utf8()
	if auth_reply.begins_with("welcome:"):
		say("welcome, %s" % auth_reply.trim_prefix("welcome:"))
		mp.complete_auth(id)


## Awaits `done` becoming true, for at most `limit` seconds; returns whether it did.
func _until(done: Callable, limit: float) -> bool:
	var deadline := Time.get_ticks_msec() + int(limit * 1000.0)
	while not done.call():
		if Time.get_ticks_msec() > deadline:
			return false
		await get_tree().process_frame
	return true


## Closes the connection and detaches the multiplayer branch (idempotent).
func _leave() -> void:
	if peer != null:
		peer.close()
	if mp != null and mp.multiplayer_peer != null:
		mp.multiplayer_peer = null


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


func say(text: String) -> void:
	print("[client %s] %s" % [args.get("player", "?"), text])

