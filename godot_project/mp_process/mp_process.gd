extends Node
## One side of a two-process DTLSMultiplayerPeer session under SceneMultiplayer, driven by
## tests/multiplayer/processes.rs. The same scene runs as the server and as the client, so
## RPC paths match. It prints `MP_PROCESS ...` lines the test waits for.
##     --role=server --idle-timeout=SECONDS [--stats-log=SECONDS]
##     --role=client --port=PORT --fingerprint=SHA256

var args := {}
var peer: DTLSMultiplayerPeer


func _ready() -> void:
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--") and arg.contains("="):
			args[arg.substr(2, arg.find("=") - 2)] = arg.substr(arg.find("=") + 1)
	if args.has("stats-log"):
		# The periodic stats log (headless runs) prints while a netkit object lives.
		ProjectSettings.set_setting("netkit/debug/stats_log_interval", float(args["stats-log"]))
	peer = DTLSMultiplayerPeer.new()
	multiplayer.peer_connected.connect(func(id: int): report("connected %d" % id))
	multiplayer.peer_disconnected.connect(_on_peer_disconnected)
	var err: Error
	if args.get("role") == "server":
		var ident := DTLSPeer.generate_self_signed("localhost")
		err = peer.create_server(0, {"certificate": ident.certificate, "private_key": ident.private_key,
				"bind_address": "127.0.0.1", "idle_timeout": float(args.get("idle-timeout", "15"))})
		if err == OK:
			multiplayer.multiplayer_peer = peer
			report("ready %d %s" % [peer.get_local_port(), ident.sha256_fingerprint])
	else:
		err = peer.create_client("127.0.0.1", int(args.get("port", "0")), {"pinned_sha256": args.get("fingerprint", "")})
		if err == OK:
			multiplayer.multiplayer_peer = peer
			multiplayer.connected_to_server.connect(func(): ping.rpc_id(1, "hello"))
	if err != OK:
		report("failed %d" % err)
		get_tree().quit(1)
	# A stuck run must not outlive the test.
	get_tree().create_timer(float(args.get("lifetime", "60"))).timeout.connect(func(): get_tree().quit(2))


## Client -> server; the server answers with `pong`.
@rpc("any_peer", "call_remote", "reliable")
func ping(text: String) -> void:
	report("ping %d %s" % [multiplayer.get_remote_sender_id(), text])
	pong.rpc_id(multiplayer.get_remote_sender_id(), text)


@rpc("authority", "call_remote", "reliable")
func pong(text: String) -> void:
	report("pong %s" % text)


func _on_peer_disconnected(id: int) -> void:
	report("disconnected %d %s" % [id, peer.get_last_disconnect_reason()])
	if args.get("role") == "server" and multiplayer.get_peers().is_empty():
		multiplayer.multiplayer_peer = null
		peer.close()
		get_tree().quit(0)


func report(text: String) -> void:
	print("MP_PROCESS %s %s" % [args.get("role", "?"), text])
