extends "res://tests/conformance_game.gd"
## A conformance server in a process of its own, so that test_enet_conformance.gd can kill
## it (OS.kill) and watch what its clients see. The scene's root is this "Game" node, at
## the same path relative to its multiplayer root as the suite's Game nodes, so RPCs match.
##     --transport=enet|dtls --port=PORT --ready-file=PATH [--cert-file=PEM --key-file=PEM]
## It writes `ready-file` once it listens, echoes every `rel0` RPC back to its sender as
## "echo <value>", and quits by itself after --lifetime seconds (30) if nobody kills it.

var args := {}


func _ready() -> void:
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--") and arg.contains("="):
			args[arg.substr(2, arg.find("=") - 2)] = arg.substr(arg.find("=") + 1)
	var port := int(args.get("port", "0"))
	var peer: MultiplayerPeer
	var err: Error
	if args.get("transport") == "enet":
		var e := ENetMultiplayerPeer.new()
		e.set_bind_ip("127.0.0.1")
		err = e.create_server(port)
		peer = e
	else:
		var d: Object = ClassDB.instantiate("DTLSMultiplayerPeer")
		err = d.create_server(port, {
			"certificate": FileAccess.get_file_as_string(args.get("cert-file", "")),
			"private_key": FileAccess.get_file_as_string(args.get("key-file", "")),
			"bind_address": "127.0.0.1"})
		peer = d
	if err != OK:
		printerr("conformance server: create_server failed: %s" % error_string(err))
		get_tree().quit(1)
		return
	multiplayer.multiplayer_peer = peer
	var f := FileAccess.open(args.get("ready-file", ""), FileAccess.WRITE)
	if f != null:
		f.store_string("ready")
		f.close()
	get_tree().create_timer(float(args.get("lifetime", "30"))).timeout.connect(_quit)


func _record(what: String, value: Variant) -> void:
	if what == "rel0":
		rel0.rpc_id(multiplayer.get_remote_sender_id(), "echo %s" % value)


func _quit() -> void:
	if multiplayer.multiplayer_peer != null:
		multiplayer.multiplayer_peer.close()
		multiplayer.multiplayer_peer = null
	get_tree().quit(0)
