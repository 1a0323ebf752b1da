extends NetkitTest
## DTLSMultiplayerPeer under Godot's SceneMultiplayer: a server and two clients in one
## process, each on its own SceneMultiplayer branch (`SceneTree.set_multiplayer`), with
## RPCs in every transfer mode and on several channels, a relayed client-to-client RPC,
## authentication, a spawner and a synchronizer, and handlers that free things.

const TIMEOUT := 40.0
const Game := preload("res://tests/mp_game.gd")

var ident: Dictionary
var branch_paths: Array[NodePath] = []


func _ready() -> void:
	ident = DTLSPeer.generate_self_signed("localhost")


func after_each() -> void:
	# Peers close first, so no packet arrives for a branch that is gone (SceneMultiplayer
	# would log "Node not found" for it); nodes (spawned players, synchronizers) then
	# leave while their multiplayer still exists, and the multiplayers go last.
	for path in branch_paths:
		var mp := get_tree().get_multiplayer(path) as SceneMultiplayer
		if mp != null and mp.multiplayer_peer != null:
			mp.multiplayer_peer.close()
	await wait_frames(2)
	for path in branch_paths:
		var b := get_node_or_null(path)
		if b != null:
			b.free()
	await wait_frames(2)
	for path in branch_paths:
		get_tree().set_multiplayer(null, path)
	await wait_frames(2)


## A branch with its own SceneMultiplayer and a "Game" node under it.
func branch(branch_name: String) -> Node:
	var b := Node.new()
	b.name = branch_name
	add_child(b)
	var game := Game.new()
	game.name = "Game"
	b.add_child(game)
	get_tree().set_multiplayer(SceneMultiplayer.new(), b.get_path())
	branch_paths.append(b.get_path())
	return b


func mp_of(b: Node) -> SceneMultiplayer:
	return get_tree().get_multiplayer(b.get_path()) as SceneMultiplayer


func game_of(b: Node) -> Game:
	return b.get_node("Game") as Game


func start_server(b: Node, extra := {}) -> DTLSMultiplayerPeer:
	var peer := DTLSMultiplayerPeer.new()
	var options := {"certificate": ident.certificate, "private_key": ident.private_key, "bind_address": "127.0.0.1"}
	options.merge(extra)
	assert_eq(peer.create_server(0, options), OK)
	mp_of(b).multiplayer_peer = peer
	return peer


func start_client(b: Node, port: int, extra := {}) -> DTLSMultiplayerPeer:
	var peer := DTLSMultiplayerPeer.new()
	var options := {"pinned_sha256": ident.sha256_fingerprint}
	options.merge(extra)
	assert_eq(peer.create_client("127.0.0.1", port, options), OK)
	assert_eq(peer.get_connection_status(), MultiplayerPeer.CONNECTION_CONNECTING)
	mp_of(b).multiplayer_peer = peer
	return peer


## Server plus two clients, all connected. Returns [server, a, b] branches.
func trio() -> Array:
	var s := branch("Server")
	var a := branch("ClientA")
	var c := branch("ClientB")
	var sp := start_server(s)
	start_client(a, sp.get_local_port())
	start_client(c, sp.get_local_port())
	var ok := await wait_until(func():
		return mp_of(s).get_peers().size() == 2 \
			and mp_of(a).get_peers().size() == 2 and mp_of(c).get_peers().size() == 2, 15.0)
	assert_true(ok, "server and both clients see everyone (relay announces clients to each other)")
	return [s, a, c]


func test_rpcs_in_every_mode_and_channel_with_relay() -> void:
	var t: Array = await trio()
	var s: Node = t[0]
	var a: Node = t[1]
	var c: Node = t[2]
	var ida := mp_of(a).get_unique_id()
	var idc := mp_of(c).get_unique_id()
	assert_true(ida >= 2 and idc >= 2 and ida != idc, "random unique client ids: %d, %d" % [ida, idc])
	assert_true(mp_of(s).is_server())
	for i in 50:
		game_of(a).rel0.rpc_id(1, i)
		game_of(a).rel2.rpc_id(1, i)
		game_of(a).uo1.rpc_id(1, i)
		game_of(a).un3.rpc_id(1, i)
		game_of(s).rel2.rpc(1000 + i)  # to every client
	game_of(a).rel0.rpc_id(idc, "relayed")  # client to client, through the server
	var big := PackedByteArray()
	big.resize(65536)
	for i in big.size():
		big[i] = i % 251
	game_of(c).rel2.rpc_id(1, big)
	var sg := game_of(s)
	var ok := await wait_until(func():
		return sg.values("rel0").size() == 50 and sg.values("rel2", ida).size() == 50 \
			and sg.values("rel2", idc).size() == 1 and game_of(c).values("rel0").size() == 1 \
			and game_of(a).values("rel2").size() == 50 and game_of(c).values("rel2").size() == 50, 15.0)
	assert_true(ok, "every reliable RPC arrived")
	assert_eq(sg.values("rel0"), range(50), "reliable channel 0: exactly once, in order")
	assert_eq(sg.values("rel2", ida), range(50), "reliable channel 2: exactly once, in order")
	var uo: Array = sg.values("uo1")
	for k in range(1, uo.size()):
		assert_gt(uo[k], uo[k - 1], "unreliable-ordered never goes backwards")
	assert_gt(uo.size(), 0, "unreliable-ordered arrives on loopback")
	assert_gt(sg.values("un3").size(), 0, "unreliable arrives on loopback")
	assert_eq(sg.values("rel2", idc), [big], "a 64 KB reliable RPC arrives intact")
	assert_eq(game_of(c).values("rel0"), ["relayed"], "relayed RPC arrives once")
	assert_eq(game_of(c).got.filter(func(g): return g[0] == "rel0")[0][1], ida, "with the original sender's id")
	assert_eq(game_of(a).values("rel2", 1), range(1000, 1050), "server broadcast, in order")
	var stats: Dictionary = (mp_of(s).multiplayer_peer as DTLSMultiplayerPeer).get_peer_stats(ida)
	assert_true(stats.has("rtt_ms") and stats["bytes_received"] > 0, "per-peer stats: %s" % stats)
	# netkit's own pings (every 500 ms from the runtime) measure it; on loopback that is a
	# few milliseconds even on a loaded machine, far below renet's quiet-link estimate.
	assert_lt(stats["rtt_ms"], 100.0, "loopback round trip from pings: %s" % stats)


## Through the lossy relay the Rust harness runs (tests/engine_suite.rs, 20 % of datagrams
## lost, 5 % duplicated, 10 % held back 20-60 ms, each way): reliable RPCs arrive exactly
## once and in order per channel, unreliable-ordered ones never go backwards, and a 64 KB
## reliable RPC arrives intact, both ways.
func test_rpcs_through_a_lossy_path() -> void:
	var server_port := int(env("lossy-server-port", "0"))
	var relay_port := int(env("lossy-relay-port", "0"))
	if not assert_true(server_port > 0 and relay_port > 0, "the harness passes the lossy relay's ports"):
		return
	var s := branch("LossyServer")
	var a := branch("LossyClient")
	var sp := DTLSMultiplayerPeer.new()
	assert_eq(sp.create_server(server_port, {"certificate": ident.certificate, "private_key": ident.private_key, "bind_address": "127.0.0.1"}), OK)
	mp_of(s).multiplayer_peer = sp
	start_client(a, relay_port)
	var ok := await wait_until(func():
		return mp_of(s).get_peers().size() == 1 and mp_of(a).get_peers().size() == 1, 20.0)
	if not assert_true(ok, "the client connects through the lossy path"):
		return
	var ida := mp_of(a).get_unique_id()
	var big := PackedByteArray()
	big.resize(65536)
	for i in big.size():
		big[i] = (i * 7) % 253
	# A burst per frame, as a game sends: 100 frames of 10 reliable RPCs on each of two
	# channels and one unreliable-ordered RPC.
	var ag := game_of(a)
	var sg := game_of(s)
	for f in 100:
		for k in 10:
			ag.rel0.rpc_id(1, f * 10 + k)
			ag.rel2.rpc_id(1, f * 10 + k)
		ag.uo1.rpc_id(1, f)
		if f == 50:
			ag.rel2.rpc_id(1, big)
			sg.rel0.rpc_id(ida, big)
		await get_tree().process_frame
	ok = await wait_until(func():
		return sg.values("rel0").size() == 1000 and sg.values("rel2").size() == 1001 \
			and ag.values("rel0").size() == 1, 60.0)
	var ids: Array = range(1000)
	var rel2: Array = sg.values("rel2").filter(func(v): return v is int)
	assert_true(ok, "every reliable RPC arrived: channel 0 %d of 1000, channel 2 %d of 1001, 64 KB to the client %d of 1" % [
		sg.values("rel0").size(), sg.values("rel2").size(), ag.values("rel0").size()])
	assert_eq(sg.values("rel0"), ids, "reliable channel 0: each of 1000 exactly once, in order")
	assert_eq(rel2, ids, "reliable channel 2: each of 1000 exactly once, in order")
	assert_eq(sg.values("rel2").filter(func(v): return v is PackedByteArray), [big],
		"a 64 KB reliable RPC arrives intact, client to server")
	assert_eq(sg.values("rel2").find(big), 510, "in its place among the small ones on its channel")
	assert_eq(ag.values("rel0"), [big], "a 64 KB reliable RPC arrives intact, server to client")
	var uo: Array = sg.values("uo1")
	for k in range(1, uo.size()):
		assert_gt(uo[k], uo[k - 1], "unreliable-ordered never goes backwards, nor repeats")
	assert_gt(uo.size(), 40, "most unreliable-ordered RPCs survive 20 %% loss (%d of 100)" % uo.size())
	assert_lt(uo.size(), 101, "none is delivered twice")


func test_authentication_admits_valid_refuses_invalid_and_drops_the_silent() -> void:
	var s := branch("Server")
	var smp := mp_of(s)
	smp.auth_timeout = 1.5
	var admitted := []
	var failed := []
	smp.peer_connected.connect(func(id): admitted.append(id))
	smp.peer_authentication_failed.connect(func(id): failed.append(id))
	# Callbacks look their SceneMultiplayer up instead of capturing it: a lambda stored in
	# (or connected to) the object it captures is a reference cycle that leaks.
	smp.auth_callback = func(id: int, data: PackedByteArray) -> void:
		if data.get_string_from_utf8() == "valid-token":
			mp_of(s).complete_auth(id)
		else:
			mp_of(s).disconnect_peer(id)
	var sp := start_server(s)
	var clients := {}
	for spec in [["Good", "valid-token"], ["Forged", "forged-token"], ["Silent", ""]]:
		var b := branch(spec[0])
		var mp := mp_of(b)
		var token: String = spec[1]
		mp.auth_callback = func(_id: int, _data: PackedByteArray) -> void:
			pass
		mp.peer_authenticating.connect(func(id: int) -> void:
			if token != "":
				mp_of(b).send_auth(id, token.to_utf8_buffer())
				mp_of(b).complete_auth(id))
		start_client(b, sp.get_local_port())
		clients[spec[0]] = b
	var good_mp := mp_of(clients["Good"])
	var forged_peer := mp_of(clients["Forged"]).multiplayer_peer
	assert_true(await wait_until(func(): return admitted.size() == 1, 10.0), "the valid token is admitted")
	assert_eq(admitted, [good_mp.get_unique_id()], "only the valid token is admitted")
	assert_true(await wait_until(func(): return good_mp.get_peers() == PackedInt32Array([1]), 5.0))
	assert_true(await wait_until(func(): return forged_peer.get_connection_status() == MultiplayerPeer.CONNECTION_DISCONNECTED, 10.0), "the forged token's client is disconnected")
	var silent_mp := mp_of(clients["Silent"])
	assert_true(await wait_until(func(): return silent_mp.get_unique_id() != 0, 5.0), "the silent client got its id")
	var silent_id := silent_mp.get_unique_id()
	assert_true(await wait_until(func(): return failed.has(silent_id), 5.0), "the silent client fails authentication at the timeout")
	assert_true(await wait_until(func(): return (sp as DTLSMultiplayerPeer).get_peer_stats(silent_id).is_empty(), 5.0), "and is disconnected")
	assert_eq(admitted.size(), 1, "nobody else was admitted")


func test_spawner_and_synchronizer_replicate_a_player() -> void:
	var t: Array = await trio()
	var players := {}
	for b: Node in t:
		var holder := Node.new()
		holder.name = "Players"
		b.add_child(holder)
		var spawner := MultiplayerSpawner.new()
		spawner.name = "Spawner"
		b.add_child(spawner)
		spawner.spawn_path = spawner.get_path_to(holder)
		spawner.spawn_function = _make_player
		players[b] = holder
	var s: Node = t[0]
	var ida := mp_of(t[1]).get_unique_id()
	var spawned: Node2D = (s.get_node("Spawner") as MultiplayerSpawner).spawn(ida)
	assert_not_null(spawned)
	spawned.position = Vector2(12, 34)
	var a_players: Node = players[t[1]]
	var c_players: Node = players[t[2]]
	assert_true(await wait_until(func(): return a_players.get_child_count() == 1 and c_players.get_child_count() == 1, 10.0), "both clients spawned the player")
	if failed():
		return
	var on_a: Node2D = a_players.get_child(0)
	assert_eq(on_a.name, StringName(str(ida)))
	assert_true(await wait_until(func(): return on_a.position == Vector2(12, 34), 10.0), "position replicated")
	spawned.position = Vector2(-5, 99)
	var on_c: Node2D = c_players.get_child(0)
	assert_true(await wait_until(func(): return on_c.position == Vector2(-5, 99), 10.0), "position updates replicated")
	spawned.queue_free()
	assert_true(await wait_until(func(): return a_players.get_child_count() == 0 and c_players.get_child_count() == 0, 10.0), "despawn replicated")


func _make_player(id: Variant) -> Node:
	var p := Node2D.new()
	p.name = str(id)
	var sync := MultiplayerSynchronizer.new()
	sync.name = "Sync"
	var config := SceneReplicationConfig.new()
	config.add_property(NodePath(".:position"))
	config.property_set_replication_mode(NodePath(".:position"), SceneReplicationConfig.REPLICATION_MODE_ALWAYS)
	sync.replication_config = config
	p.add_child(sync)
	return p


func test_freeing_the_peer_or_the_branch_from_handlers_never_crashes() -> void:
	var t: Array = await trio()
	var s: Node = t[0]
	var a: Node = t[1]
	var c: Node = t[2]
	# A client drops its own peer from inside an RPC handler's aftermath, and the server
	# frees its whole branch from its peer_disconnected handler.
	var events := []
	mp_of(s).peer_disconnected.connect(func(id):
		events.append(["server saw leave", id])
		mp_of(s).multiplayer_peer = null  # the server's last reference to its peer
		s.free())
	mp_of(c).server_disconnected.connect(func():
		events.append("c lost server")
		mp_of(c).multiplayer_peer = null
		c.queue_free())
	mp_of(a).multiplayer_peer = null  # a's peer is dropped: last reference gone
	assert_true(await wait_until(func(): return events.size() >= 1, 20.0), "server saw the client leave")
	assert_true(await wait_until(func(): return "c lost server" in events, 20.0), "the other client saw the server go")
	await wait_frames(5)
	assert_false(is_instance_valid(s))
