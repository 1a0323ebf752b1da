extends NetkitTest
## AgonesSDK against the test SDK server (rust/test_support/src/agones_sdk.rs), whose port the
## Rust driver passes as --agones-sdk-port. Each test asks it for a fresh instance (its
## own GameServer in state Scheduled, optionally a sidecar that starts late) with
## POST /test/new, and reads what that instance received through its /test/ endpoints.

const TIMEOUT := 40.0

var control_url := ""


func _ready() -> void:
	var port := env("agones-sdk-port")
	if port == "":
		fail("no --agones-sdk-port given: run the suite through `cargo test`")
	control_url = "http://127.0.0.1:%s" % port


## Awaits a task's response (null and a recorded failure on timeout).
func done(task: HTTPTask, timeout_s := 15.0) -> HTTPResponse:
	if task.is_done():
		return task.response
	var args = await wait_signal(task.completed, timeout_s)
	return null if args == null else args[0]


## A request to the test server at `url` through a pool of its own; null on failure.
func control(url: String, method := HTTPClient.METHOD_GET) -> Variant:
	var pool := HTTPPool.new()
	add_child(pool)
	var res := await done(pool.request(method, url, null))
	pool.queue_free()
	if res == null or not res.ok:
		fail("test server call %s failed: %s" % [url, res.error_message if res else "timeout"])
		return null
	return res.json


## A fresh sidecar instance whose port accepts connections after `delay_ms`; 0 on failure.
func new_sidecar(delay_ms := 0) -> int:
	var json = await control("%s/test/new?delay_ms=%d" % [control_url, delay_ms], HTTPClient.METHOD_POST)
	return 0 if json == null else int(json["port"])


## The instance's health pings: {"now_ms", "count", "times_ms"} (ms since it was created).
func pings(port: int) -> Dictionary:
	var json = await control("http://127.0.0.1:%d/test/pings" % port)
	return json if json is Dictionary else {"now_ms": 0, "count": 0, "times_ms": []}


## The instance's SDK requests as "METHOD /path" lines.
func requests(port: int) -> PackedStringArray:
	var json = await control("http://127.0.0.1:%d/test/requests" % port)
	var lines := PackedStringArray()
	if json is Dictionary:
		for r: Dictionary in json["requests"]:
			lines.append(r["line"])
	return lines


func make_sdk(port: int, props := {}) -> AgonesSDK:
	var sdk := AgonesSDK.new()
	sdk.port = port
	for key in props:
		sdk.set(key, props[key])
	add_child(sdk)
	return sdk


## Records every state the watch stream reports, in order.
func track_states(sdk: AgonesSDK) -> Array:
	var states := []
	sdk.game_server_changed.connect(func(gs: Dictionary): states.append(gs["status"]["state"]))
	return states


func count_between(times: Array, from_ms: int, to_ms: int) -> int:
	var n := 0
	for t in times:
		if t > from_ms and t < to_ms:
			n += 1
	return n


func test_ready_moves_the_game_server_to_ready() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port)
	var states := track_states(sdk)
	assert_true(sdk.is_under_agones())
	assert_true(await wait_until(func(): return states.has("Scheduled"), 5.0), "the watch stream sends the current record first")
	var res := await done(sdk.ready())
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_true(await wait_until(func(): return states.has("Ready"), 5.0), "states: %s" % [states])
	assert_eq(states, ["Scheduled", "RequestReady", "Ready"])
	assert_eq(sdk.last_game_server["status"]["state"], "Ready")
	res = await done(sdk.get_game_server())
	assert_true(res.ok, res.error_message)
	assert_eq(res.json["status"]["state"], "Ready")
	assert_eq(res.json["status"]["ports"][0]["port"], 7777)


func test_labels_and_annotations_are_stored_under_the_sdk_prefix() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port)
	var label_seen := []
	sdk.game_server_changed.connect(func(gs: Dictionary):
		if gs["object_meta"]["labels"].has("agones.dev/sdk-mode"):
			label_seen.append(gs["object_meta"]["labels"]["agones.dev/sdk-mode"]))
	var label := sdk.set_label("mode", "ranked")
	var note := sdk.set_annotation("motd", "Welcome, players! ✓")
	assert_true((await done(label)).ok)
	assert_true((await done(note)).ok)
	var res := await done(sdk.get_game_server())
	assert_eq(res.json["object_meta"]["labels"]["agones.dev/sdk-mode"], "ranked")
	assert_eq(res.json["object_meta"]["annotations"]["agones.dev/sdk-motd"], "Welcome, players! ✓")
	assert_true(await wait_until(func(): return label_seen.has("ranked"), 5.0), "the label reached game_server_changed")
	# Keys Kubernetes would refuse fail here, with the reason, and are not sent.
	var bad := await done(sdk.set_label("bad key", "x"))
	assert_eq(bad.error, HTTPResponse.ERR_INVALID_REQUEST)
	assert_contains(bad.error_message, "agones.dev/sdk-bad key")
	bad = await done(sdk.set_label("mode", "not a label value"))
	assert_eq(bad.error, HTTPResponse.ERR_INVALID_REQUEST)
	var lines := await requests(port)
	assert_eq(Array(lines).count("PUT /metadata/label"), 1, "only the valid label was sent: %s" % [lines])


func test_allocation_is_seen_through_game_server_changed() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port)
	var states := track_states(sdk)
	assert_true((await done(sdk.ready())).ok)
	assert_true(await wait_until(func(): return states.has("Ready"), 5.0))
	# A matchmaker's GameServerAllocation: the game only learns it from the watch stream.
	# The signal may come before the control call's own answer, so track, don't await it.
	await control("http://127.0.0.1:%d/test/allocate" % port, HTTPClient.METHOD_POST)
	assert_true(await wait_until(func(): return states.back() == "Allocated", 5.0), "states: %s" % [states])
	assert_eq(sdk.last_game_server["status"]["state"], "Allocated")
	# Back to Ready, reserved for 1 s, then Ready again on its own; then self-allocated.
	assert_true((await done(sdk.ready())).ok)
	assert_true((await done(sdk.reserve(1))).ok)
	assert_true(await wait_until(func(): return states.back() == "Reserved", 5.0), "states: %s" % [states])
	assert_true(await wait_until(func(): return states.back() == "Ready", 5.0), "the reservation ends: %s" % [states])
	assert_true((await done(sdk.allocate())).ok)
	assert_true(await wait_until(func(): return states.back() == "Allocated", 5.0), "states: %s" % [states])
	assert_eq((await done(sdk.reserve(-1))).error, HTTPResponse.ERR_INVALID_REQUEST)


func test_health_pings_continue_through_a_2s_main_thread_stall() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port, {"health_interval": 0.25})
	assert_eq(sdk.health_tolerance, 5.0, "the default tolerance")
	assert_true(await wait_until(func(): return sdk.get_stats()["pings_ok"] >= 2, 5.0), "pings start")
	var before := await pings(port)
	var t0: int = before["now_ms"]
	OS.delay_msec(2000)   # the main thread hitches: no frame for 2 s
	await wait_frames(2)
	var after := await pings(port)
	# 0.25 s interval: about 6 pings inside the stall; 3 is the floor on a loaded machine.
	var during := count_between(after["times_ms"], t0 + 300, t0 + 1900)
	assert_ge(during, 3, "pings during the stall (t0=%d): %s" % [t0, after["times_ms"]])
	assert_eq(sdk.get_stats()["pings_skipped"], 0)


func test_a_hung_main_loop_stops_pinging() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port, {"health_interval": 0.2, "health_tolerance": 1.0})
	assert_true(await wait_until(func(): return sdk.get_stats()["pings_ok"] >= 2, 5.0), "pings start")
	var t0: int = (await pings(port))["now_ms"]
	OS.delay_msec(3000)   # longer than the tolerance: this is what a deadlock looks like
	await wait_frames(2)
	var after := await pings(port)
	# Pings stop once the last frame is older than 1 s (+ one interval + slack) ...
	var late := count_between(after["times_ms"], t0 + 1700, t0 + 2900)
	assert_eq(late, 0, "no ping from a hung main loop (t0=%d): %s" % [t0, after["times_ms"]])
	assert_gt(sdk.get_stats()["pings_skipped"], 0)
	# ... and resume with the frames.
	var count: int = after["count"]
	assert_true(await _pings_above(port, count), "pings resume")


## True once the instance has received more than `count` pings (polled for up to 3 s).
func _pings_above(port: int, count: int) -> bool:
	var deadline := Time.get_ticks_msec() + 3000
	while Time.get_ticks_msec() < deadline:
		if (await pings(port))["count"] > count:
			return true
		await wait_seconds(0.1)
	return false


func test_calls_wait_for_a_sidecar_that_starts_3s_after_the_game() -> void:
	var port := await new_sidecar(3000)
	if port == 0: return
	var started := Time.get_ticks_msec()
	var sdk := make_sdk(port)
	var states := track_states(sdk)
	var res := await done(sdk.ready(), 30.0)
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_ge(Time.get_ticks_msec() - started, 2800, "the call waited for the sidecar")
	assert_gt(res.attempts, 1, "refused attempts were retried")
	assert_true(await wait_until(func(): return states.has("Ready"), 10.0), "the watch stream reconnected: %s" % [states])
	assert_true(await wait_until(func(): return sdk.get_stats()["pings_ok"] > 0, 5.0), "pings reach the late sidecar")


func test_outside_agones_calls_fail_at_once_and_nothing_is_sent() -> void:
	if not assert_false(OS.has_environment("AGONES_SDK_HTTP_PORT"), "this test needs AGONES_SDK_HTTP_PORT unset"):
		return
	var sdk := AgonesSDK.new()
	add_child(sdk)
	assert_false(sdk.is_under_agones(), "nothing may listen on 127.0.0.1:9358 for this test")
	var started := Time.get_ticks_msec()
	var res := await done(sdk.ready(), 5.0)
	if not assert_not_null(res): return
	assert_lt(Time.get_ticks_msec() - started, 1000)
	assert_eq(res.error, HTTPResponse.ERR_CONNECT)
	assert_contains(res.error_message, "not running under Agones")
	await wait_seconds(0.3)
	assert_eq(sdk.get_stats()["pings_sent"], 0)


func test_freeing_the_node_ends_awaited_calls() -> void:
	var port := await new_sidecar(600000)   # a sidecar that never comes up during the test
	if port == 0: return
	var sdk := make_sdk(port)
	var task := sdk.ready()
	await wait_frames(2)
	sdk.free()
	var res := await done(task, 5.0)
	if not assert_not_null(res): return
	assert_eq(res.error, HTTPResponse.ERR_CANCELLED)


func test_counters_count_within_their_capacity() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port, {"watch_enabled": false})
	var res := await done(sdk.get_counter("rooms"))
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_true(strict_equal(res.json, {"name": "rooms", "count": 0, "capacity": 10}), "numbers are ints: %s" % [res.json])
	res = await done(sdk.update_counter("rooms", {"capacity": 3, "count": 1}))
	assert_eq(res.json, {"name": "rooms", "count": 1, "capacity": 3})
	res = await done(sdk.increment_counter("rooms"))
	assert_eq(res.json["count"], 2)
	res = await done(sdk.increment_counter("rooms", 2))
	assert_eq(res.error, HTTPResponse.ERR_HTTP_STATUS, "4 is beyond the capacity of 3")
	assert_eq(res.attempts, 1, "a refusal is final, not retried")
	# The shorthands are update_counter calls, and their messages say so.
	assert_contains(res.error_message, "update_counter('rooms'): the Counter 'rooms' would leave the range 0 to its capacity")
	res = await done(sdk.decrement_counter("rooms", 2))
	assert_eq(res.json["count"], 0)
	res = await done(sdk.decrement_counter("rooms"))
	assert_contains(res.error_message, "would leave the range")
	res = await done(sdk.update_counter("rooms", {"count_diff": 3}))
	assert_eq(res.json["count"], 3)
	res = await done(sdk.get_counter("lobbies"))
	assert_eq(res.error, HTTPResponse.ERR_HTTP_STATUS)
	assert_contains(res.error_message, "get_counter('lobbies'): the Counter 'lobbies' does not exist: declare it under spec.counters")
	res = await done(sdk.update_counter("lobbies", {"count": 1}))
	assert_contains(res.error_message, "the Counter 'lobbies' does not exist")
	# Arguments that cannot be a CounterUpdateRequest end here, and nothing is sent.
	var before := (await requests(port)).size()
	for bad in [{}, {"cuont": 1}, {"count": "one"}, {"count": 1.5}, {"capacity": -1}]:
		res = await done(sdk.update_counter("rooms", bad))
		assert_eq(res.error, HTTPResponse.ERR_INVALID_REQUEST, "%s" % [bad])
		assert_contains(res.error_message, "update_counter('rooms'): ")
	# A String that looks like a number is named as the String it is.
	res = await done(sdk.update_counter("rooms", {"count": "3"}))
	assert_contains(res.error_message, "count must be an integer, not the String \"3\"")
	res = await done(sdk.increment_counter("rooms", 0))
	assert_contains(res.error_message, "the amount must be 1 or more")
	assert_eq((await requests(port)).size(), before, "refused calls are not sent")
	res = await done(sdk.get_game_server())
	assert_eq(res.json["status"]["counters"]["rooms"], {"count": "3", "capacity": "3"}, "the record as the gateway writes it")


func test_lists_hold_values_up_to_their_capacity() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port, {"watch_enabled": false})
	var res := await done(sdk.get_list("players"))
	if not assert_not_null(res): return
	assert_true(strict_equal(res.json, {"name": "players", "capacity": 8, "values": []}), "%s" % [res.json])
	res = await done(sdk.update_list("players", {"capacity": 2}))
	assert_eq(res.json["capacity"], 2)
	res = await done(sdk.add_list_value("players", "ana"))
	assert_eq(res.json["values"], ["ana"])
	res = await done(sdk.add_list_value("players", "ana"))
	assert_eq(res.error, HTTPResponse.ERR_HTTP_STATUS)
	assert_contains(res.error_message, "add_list_value('players'): 'ana' is already in the List 'players'")
	res = await done(sdk.add_list_value("players", "bo"))
	assert_eq(res.json["values"], ["ana", "bo"])
	res = await done(sdk.add_list_value("players", "cy"))
	assert_eq(res.attempts, 1)
	assert_contains(res.error_message, "add_list_value('players'): the List 'players' is full")
	res = await done(sdk.remove_list_value("players", "zed"))
	assert_contains(res.error_message, "remove_list_value('players'): 'zed' is not in the List 'players'")
	res = await done(sdk.remove_list_value("players", "ana"))
	assert_eq(res.json["values"], ["bo"])
	res = await done(sdk.update_list("players", {"values": PackedStringArray(["x", "y", "z"])}))
	assert_eq(res.json, {"name": "players", "capacity": 2, "values": ["x", "y"]}, "values beyond the capacity are dropped")
	res = await done(sdk.update_list("players", {"capacity": 5, "values": ["p"]}))
	assert_eq(res.json, {"name": "players", "capacity": 5, "values": ["p"]})
	res = await done(sdk.get_list("teams"))
	assert_contains(res.error_message, "get_list('teams'): the List 'teams' does not exist: declare it under spec.lists")
	res = await done(sdk.add_list_value("teams", "red"))
	assert_contains(res.error_message, "the List 'teams' does not exist")
	var before := (await requests(port)).size()
	for bad in [{}, {"capacity": 1001}, {"values": "x"}, {"values": [1]}, {"size": 1}]:
		res = await done(sdk.update_list("players", bad))
		assert_eq(res.error, HTTPResponse.ERR_INVALID_REQUEST, "%s" % [bad])
	assert_contains((await done(sdk.update_list("players", {"values": ["a", 7]}))).error_message,
		"values must be Strings, not int 7")
	assert_contains((await done(sdk.update_list("players", {"values": "abc"}))).error_message,
		"values must be an Array of Strings, not the String \"abc\"")
	assert_eq((await done(sdk.add_list_value("players", ""))).error, HTTPResponse.ERR_INVALID_REQUEST)
	assert_eq((await done(sdk.get_list("a/b"))).error, HTTPResponse.ERR_INVALID_REQUEST)
	assert_eq((await requests(port)).size(), before, "refused calls are not sent")


func test_counter_calls_wait_for_a_sidecar_that_starts_late() -> void:
	var port := await new_sidecar(2000)
	if port == 0: return
	var sdk := make_sdk(port, {"watch_enabled": false})
	var res := await done(sdk.increment_counter("rooms"), 30.0)
	if not assert_not_null(res): return
	assert_true(res.ok, res.error_message)
	assert_gt(res.attempts, 1, "refused connections were retried")
	assert_eq(res.json["count"], 1)


func test_calls_beyond_the_queue_fail_at_once_naming_the_call() -> void:
	var port := await new_sidecar(600000)   # never up: every call waits, retrying
	if port == 0: return
	var sdk := make_sdk(port, {"watch_enabled": false, "health_enabled": false})
	var tasks: Array[HTTPTask] = []
	for i in 1100:   # one in flight, 1024 waiting, the rest refused
		tasks.append(sdk.get_counter("rooms"))
	var last := await done(tasks[1099], 5.0)
	if not assert_not_null(last): return
	assert_eq(last.error, HTTPResponse.ERR_QUEUE_FULL, last.error_message)
	assert_true(last.error_message.begins_with("get_counter('rooms'): not sent: 1024 calls already wait"),
		last.error_message)
	assert_false("max_queued" in last.error_message, "names no setting the node lacks: " + last.error_message)
	assert_false(tasks[1024].is_done(), "the 1024 that fit still wait for the sidecar")
	sdk.free()


## The List's values as the sidecar holds them now (null on failure).
func list_values(sdk: AgonesSDK, list := "players") -> Variant:
	var res := await done(sdk.get_list(list))
	return null if res == null or not res.ok else res.json["values"]


## Polls the List until it holds `expected` (in any order).
func list_becomes(sdk: AgonesSDK, expected: Array, timeout_s := 10.0) -> bool:
	var want := expected.duplicate()
	want.sort()
	var deadline := Time.get_ticks_msec() + int(timeout_s * 1000.0)
	while Time.get_ticks_msec() < deadline:
		var got = await list_values(sdk)
		if got is Array:
			got.sort()
			if got == want:
				return true
		await wait_seconds(0.05)
	fail("the List never held %s; last %s" % [want, await list_values(sdk)])
	return false


var mp: RefCounted


func after_each() -> void:
	if mp != null:
		await mp.close()


func test_track_players_adds_and_removes_peers_and_refuses_when_full() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port, {"watch_enabled": false})
	assert_true((await done(sdk.update_list("players", {"capacity": 2}))).ok)
	mp = preload("res://tests/mp_branches.gd").new(self)
	var s: Node = mp.branch("Server")
	var server: DTLSMultiplayerPeer = mp.start_server(s)
	if not assert_not_null(server): return
	assert_eq(sdk.track_players(mp.mp_of(s)), OK)
	var a: Node = mp.branch("A")
	mp.start_client(a, server.get_local_port())
	assert_true(await wait_until(func(): return mp.mp_of(a).get_peers().has(1), 10.0), "A connects")
	var ida := str(mp.mp_of(a).get_unique_id())
	assert_true(await list_becomes(sdk, [ida]), "A is in the List")
	assert_false(server.refuse_new_connections)
	var b: Node = mp.branch("B")
	mp.start_client(b, server.get_local_port())
	# Clients see each other through the server's relay, so "connected" is: sees the server.
	assert_true(await wait_until(func(): return mp.mp_of(b).get_peers().has(1), 10.0), "B connects")
	var idb := str(mp.mp_of(b).get_unique_id())
	assert_true(await list_becomes(sdk, [ida, idb]))
	assert_true(await wait_until(func(): return server.refuse_new_connections, 5.0), "full: new connections are refused")
	# A third client is turned away while the List is full.
	var c: Node = mp.branch("C")
	var cpeer: DTLSMultiplayerPeer = mp.start_client(c, server.get_local_port())
	assert_true(await wait_until(func(): return cpeer.get_connection_status() == MultiplayerPeer.CONNECTION_DISCONNECTED, 10.0), "C is refused")
	assert_eq(mp.mp_of(s).get_peers().size(), 2)
	assert_eq(sdk.get_stats()["players_tracked"], 2)
	# Kicking A frees its place: the List loses it and connections are welcome again.
	server.disconnect_peer(int(ida))
	assert_true(await list_becomes(sdk, [idb]), "a kicked peer leaves the List")
	assert_true(await wait_until(func(): return not server.refuse_new_connections, 5.0), "room again")
	mp.start_client(c, server.get_local_port())
	assert_true(await wait_until(func(): return mp.mp_of(c).get_peers().has(1), 10.0), "C connects now")
	var idc := str(mp.mp_of(c).get_unique_id())
	assert_true(await list_becomes(sdk, [idb, idc]))
	assert_true(await wait_until(func(): return server.refuse_new_connections, 5.0), "full again")
	# B leaves on its own; raising the capacity also lets players in.
	mp.mp_of(b).multiplayer_peer.close()
	assert_true(await list_becomes(sdk, [idc]), "a peer that leaves leaves the List")
	assert_true(await wait_until(func(): return not server.refuse_new_connections, 5.0))
	assert_eq(sdk.get_stats()["players_tracked"], 1)


func test_track_players_after_authentication_with_mapped_values() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port, {"watch_enabled": false})
	var accounts := {}
	sdk.player_value = func(id: int) -> String: return accounts.get(id, "")
	mp = preload("res://tests/mp_branches.gd").new(self)
	var s: Node = mp.branch("Server")
	var smp: SceneMultiplayer = mp.mp_of(s)
	var tokens := {}
	smp.auth_callback = func(id: int, data: PackedByteArray) -> void:
		tokens[id] = data.get_string_from_utf8()
	var server: DTLSMultiplayerPeer = mp.start_server(s)
	if not assert_not_null(server): return
	assert_eq(sdk.track_players(smp, "players"), OK)
	var a: Node = mp.branch("A")
	var amp: SceneMultiplayer = mp.mp_of(a)
	amp.auth_callback = func(_id: int, _data: PackedByteArray) -> void: pass
	# Looked up, not captured: a lambda connected to the object it captures leaks.
	amp.peer_authenticating.connect(func(id: int) -> void:
		mp.mp_of(a).send_auth(id, "acct-ana".to_utf8_buffer())
		mp.mp_of(a).complete_auth(id))
	mp.start_client(a, server.get_local_port())
	assert_true(await wait_until(func(): return tokens.size() == 1, 10.0), "A sent its token")
	var ida: int = tokens.keys()[0]
	await wait_seconds(0.3)
	assert_eq(await list_values(sdk), [], "not in the List while authenticating")
	accounts[ida] = tokens[ida]
	smp.complete_auth(ida)
	assert_true(await list_becomes(sdk, ["acct-ana"]), "added once authenticated, under its account")
	server.disconnect_peer(ida)
	assert_true(await list_becomes(sdk, []), "and removed by its account when kicked")


func test_track_players_warns_when_the_list_does_not_exist_and_can_be_replaced() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port, {"watch_enabled": false})
	mp = preload("res://tests/mp_branches.gd").new(self)
	var s: Node = mp.branch("Server")
	var server: DTLSMultiplayerPeer = mp.start_server(s)
	if not assert_not_null(server): return
	assert_eq(sdk.track_players(mp.mp_of(s), "teams"), OK)
	var a: Node = mp.branch("A")
	mp.start_client(a, server.get_local_port())
	assert_true(await wait_until(func(): return mp.mp_of(a).get_peers().has(1), 10.0), "A still connects")
	assert_true(await wait_until(func(): return sdk.get_stats()["calls_pending"] == 0, 10.0))
	assert_eq(sdk.get_stats()["players_tracked"], 0, "nobody is counted in a List that does not exist")
	assert_false(server.refuse_new_connections)
	# Tracking "players" instead replaces it, and adds the peers connected already.
	assert_eq(sdk.track_players(mp.mp_of(s)), OK)
	assert_true(await list_becomes(sdk, [str(mp.mp_of(a).get_unique_id())]), "A, connected before, is added")
	expect_error("track_players: the MultiplayerAPI is null")
	assert_eq(sdk.track_players(null), ERR_INVALID_PARAMETER)
	expect_error("a Counter or List name must be non-empty")
	assert_eq(sdk.track_players(mp.mp_of(s), "a/b"), ERR_INVALID_PARAMETER)


func test_track_players_maps_peers_connected_before_with_a_map_that_uses_the_node() -> void:
	var port := await new_sidecar()
	if port == 0: return
	var sdk := make_sdk(port, {"watch_enabled": false})
	# The map may use the node (here its stats) for peers connected before track_players too.
	sdk.player_value = func(id: int) -> String:
		return "acct-%d-%d" % [id, sdk.get_stats()["players_waiting"]]
	mp = preload("res://tests/mp_branches.gd").new(self)
	var s: Node = mp.branch("Server")
	var server: DTLSMultiplayerPeer = mp.start_server(s)
	if not assert_not_null(server): return
	var a: Node = mp.branch("A")
	mp.start_client(a, server.get_local_port())
	assert_true(await wait_until(func(): return mp.mp_of(a).get_peers().has(1), 10.0), "A connects")
	var ida: int = mp.mp_of(a).get_unique_id()
	assert_eq(sdk.track_players(mp.mp_of(s)), OK)
	assert_true(await list_becomes(sdk, ["acct-%d-0" % ida]), "A, connected before, is added under its mapped value")
	assert_eq(sdk.get_stats()["players_tracked"], 1)
