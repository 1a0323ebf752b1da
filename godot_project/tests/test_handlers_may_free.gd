extends NetkitTest
## Every signal of HTTPPool, HTTPTask and DTLSPeer, with a handler (or an awaiting
## coroutine) that frees the emitter, frees the emitter's parent, queue_free()s the
## emitter, frees another node of the same class, or calls back into the emitter.
## Godot's own nodes only log in these cases; netkit must not abort the game (a signal
## emitted while a Rust borrow of the node is held would), must deliver nothing to a freed
## node, and must leave every other node working. The runner fails the suite on any
## crash or unexpected ERROR line. The Netkit singleton's `shutdown_requested` is covered
## by tests/addon/shutdown_signal.rs, which sends a real SIGTERM to a separate process.

const TIMEOUT := 120.0
const ACTIONS := ["free_emitter", "free_parent", "queue_free_emitter", "free_other", "call_back"]

var http_url := ""
var ident: Dictionary


func _ready() -> void:
	http_url = env("http-url")
	if http_url == "":
		fail("no --http-url given: run the suite through `cargo test`")
	ident = DTLSPeer.generate_self_signed("localhost")


func new_pool(parent: Node) -> HTTPPool:
	var pool := HTTPPool.new()
	pool.base_url = http_url
	parent.add_child(pool)
	return pool


func response_of(task: HTTPTask, timeout_s := 10.0) -> HTTPResponse:
	if task.is_done():
		return task.response
	var args = await wait_signal(task.completed, timeout_s)
	return null if args == null else args[0]


## Does `action` to `emitter` (whose parent is `parent`); `other` is another node of the
## same class. Returns what a call-back produced (an HTTPTask, or an Error code), else null.
## `locked` says the emitter is emitting the signal being handled: Godot itself then
## refuses `free()` with an error (as it does for HTTPRequest and every other class), and
## the game goes on.
func act(action: String, emitter: Node, parent: Node, other: Node, locked := false) -> Variant:
	match action:
		"free_emitter":
			if locked:
				expect_error("Object is locked and can't be freed")
				expect_error("Attempted to free a locked object")
			emitter.free()
		"free_parent":
			if locked:
				# Godot deletes the children, the emitter among them, and says so.
				expect_error("was freed or unreferenced while a signal is being emitted")
			parent.free()
		"queue_free_emitter":
			emitter.queue_free()
		"free_other":
			other.free()
		"call_back":
			if emitter is HTTPPool:
				return (emitter as HTTPPool).fetch("/json")
			var peer := emitter as DTLSPeer
			peer.get_stats()
			for id in peer.get_peer_ids():
				return peer.send(id, "from a handler".to_utf8_buffer())
			return OK
	return null


# --- HTTPPool and HTTPTask ---------------------------------------------------------------

func test_http_handlers_may_free_or_reenter() -> void:
	var witness := new_pool(self)
	for how in ["await", "task_completed", "request_completed"]:
		for action in ACTIONS:
			await http_case(how, action, witness)
			if failed():
				return
	var res := await response_of(witness.fetch("/json"))
	assert_true(res != null and res.ok, "a pool untouched by all of this still works")


func http_case(how: String, action: String, witness: HTTPPool) -> void:
	var label := "HTTP %s + %s: " % [how, action]
	var parent := Node.new()
	add_child(parent)
	var pool := new_pool(parent)
	var other := new_pool(self)
	# One quick request whose ending triggers the action, and slower ones still running
	# when it happens: they must end too (cancelled if the pool went away), never hang.
	var tasks: Array[HTTPTask] = [pool.fetch("/json"), pool.fetch("/delay?ms=300"), pool.fetch("/delay?ms=300")]
	# Nodes live in a Dictionary, not in lambda captures: Godot logs an error when a
	# lambda whose captured node was freed runs again.
	var state := {"calls": 0, "result": null, "nodes": [pool, parent, other]}
	# Inside request_completed the pool is emitting; HTTPTask.completed is the task's.
	var locked: bool = how == "request_completed"
	var handler := func() -> void:
		state["calls"] += 1
		if state["calls"] == 1:
			var n: Array = state["nodes"]
			state["result"] = act(action, n[0], n[1], n[2], locked)
	match how:
		"await":
			var first := await response_of(tasks[0])
			if not assert_not_null(first, label + "the awaited request ended"): return
			handler.call()
		"task_completed":
			tasks[0].completed.connect(handler.unbind(1))
		"request_completed":
			pool.request_completed.connect(handler.unbind(2))
	if not assert_true(await wait_until(func() -> bool: return state["calls"] > 0, 10.0), label + "the handler ran"):
		return
	for task in tasks:
		var res := await response_of(task)
		if not assert_not_null(res, label + "every request of the pool ends, none hangs"):
			return
		if action in ["free_emitter", "free_parent", "queue_free_emitter"] and task != tasks[0]:
			# Cancelled when the pool went first, completed when it was refused or later.
			assert_true(res.ok or res.error == HTTPResponse.ERR_CANCELLED, label + res.error_message)
		else:
			assert_true(res.ok, label + res.error_message)
	await wait_frames(2)
	var pool_gone := action in ["free_emitter", "free_parent", "queue_free_emitter"]
	if locked and action == "free_emitter":
		pool_gone = false
	assert_eq(is_instance_valid(pool), not pool_gone, label + "the pool is freed exactly when asked")
	assert_eq(is_instance_valid(other), action != "free_other", label + "the other pool is freed exactly when asked")
	if action == "call_back":
		var again := await response_of(state["result"])
		assert_true(again != null and again.ok, label + "a request made from inside the handler completes")
	if is_instance_valid(other):
		var res := await response_of(other.fetch("/json"))
		assert_true(res != null and res.ok, label + "another pool keeps working")
	if not pool_gone:
		var res := await response_of(pool.fetch("/json"))
		assert_true(res != null and res.ok, label + "the pool itself keeps working")
	var res := await response_of(witness.fetch("/json"))
	assert_true(res != null and res.ok, label + "an unrelated pool keeps working")
	for node in [parent, other]:
		if is_instance_valid(node):
			node.free()


# --- DTLSPeer ------------------------------------------------------------------------------

func new_server(parent: Node, extra := {}) -> DTLSPeer:
	var server := DTLSPeer.new()
	parent.add_child(server)
	var options := {"certificate": ident["certificate"], "private_key": ident["private_key"], "bind_address": "127.0.0.1"}
	options.merge(extra, true)
	assert_eq(server.start_server(0, options), OK, "start_server")
	return server


func new_client(parent: Node, port: int, options := {}) -> DTLSPeer:
	var client := DTLSPeer.new()
	parent.add_child(client)
	if options.is_empty():
		options = {"pinned_sha256": ident["sha256_fingerprint"]}
	assert_eq(client.connect_to_server("127.0.0.1", port, options), OK, "connect_to_server")
	return client


## A server and a client that echo each other, to prove that nodes not involved in a
## case keep working: a packet sent through it comes back within `timeout_s`.
func echo_works(server: DTLSPeer, client: DTLSPeer, timeout_s := 5.0) -> bool:
	var got := {"n": 0}
	var on_packet := func(_id: int, _data: PackedByteArray) -> void: got["n"] += 1
	client.packet_received.connect(on_packet)
	client.send(1, "ping".to_utf8_buffer())
	var ok := await wait_until(func() -> bool: return got["n"] > 0, timeout_s)
	client.packet_received.disconnect(on_packet)
	return ok


func test_dtls_handlers_may_free_or_reenter() -> void:
	var witness_server := new_server(self)
	witness_server.packet_received.connect(func(id: int, data: PackedByteArray) -> void: witness_server.send(id, data))
	var witness_client := new_client(self, witness_server.get_local_port())
	if not assert_true(await wait_until(func() -> bool: return witness_client.get_status() == DTLSPeer.STATUS_CONNECTED, 5.0), "witness connects"):
		return
	for sig in ["peer_connected", "packet_received", "peer_disconnected", "connection_failed", "client_peer_connected"]:
		for action in ACTIONS:
			await dtls_case(sig, action, witness_server, witness_client)
			if failed():
				return
	assert_true(await echo_works(witness_server, witness_client), "a pair untouched by all of this still echoes")


func dtls_case(sig: String, action: String, witness_server: DTLSPeer, witness_client: DTLSPeer) -> void:
	var label := "DTLS %s + %s: " % [sig, action]
	var parent := Node.new()
	add_child(parent)
	var other := DTLSPeer.new()
	add_child(other)
	# The emitter is a server for the server-side signals, a client for the client-side ones.
	var client_side := sig in ["connection_failed", "client_peer_connected"]
	var server: DTLSPeer
	var client: DTLSPeer
	var emitter: DTLSPeer
	if client_side:
		server = new_server(self)
		var wrong_pin := {"pinned_sha256": "00:".repeat(31) + "00"}
		client = new_client(parent, server.get_local_port(), wrong_pin if sig == "connection_failed" else {})
		emitter = client
	else:
		server = new_server(parent)
		emitter = server
	var state := {"calls": 0, "result": null, "nodes": [emitter, parent, other]}
	var handler := func() -> void:
		state["calls"] += 1
		if state["calls"] == 1:
			var n: Array = state["nodes"]
			state["result"] = act(action, n[0], n[1], n[2], true)
	match sig:
		"peer_connected":
			server.peer_connected.connect(handler.unbind(1))
			client = new_client(self, server.get_local_port())
		"packet_received":
			server.packet_received.connect(handler.unbind(2))
			client = new_client(self, server.get_local_port())
			# A handshake can take seconds on a loaded machine; a client that never
			# connects fails the test here, not later as "the handler never ran".
			if assert_true(await wait_until(func() -> bool: return client.get_status() == DTLSPeer.STATUS_CONNECTED, 20.0), label + "the client connects"):
				for i in 3:
					client.send(1, "burst".to_utf8_buffer())
		"peer_disconnected":
			server.peer_disconnected.connect(handler.unbind(2))
			client = new_client(self, server.get_local_port())
			if assert_true(await wait_until(func() -> bool: return server.get_peer_ids().size() == 1, 20.0), label + "the client connects"):
				client.close()
		"connection_failed":
			client.connection_failed.connect(handler.unbind(1))
		"client_peer_connected":
			client.peer_connected.connect(handler.unbind(1))
	if not assert_true(await wait_until(func() -> bool: return state["calls"] > 0, 10.0), label + "the handler ran"):
		return
	# queue_free() waits for the end of the frame, so events of the same frame may still
	# arrive before it; from then on nothing may.
	await wait_frames(2)
	var calls_after_free: int = state["calls"]
	if sig == "packet_received" and client != null and is_instance_valid(client):
		client.send(1, "after".to_utf8_buffer())
	await wait_frames(3)
	# free() inside the emitter's own signal is refused by Godot (see act()).
	var emitter_gone := action in ["free_parent", "queue_free_emitter"]
	assert_eq(is_instance_valid(emitter), not emitter_gone, label + "the emitter is freed exactly when asked")
	assert_eq(is_instance_valid(other), action != "free_other", label + "the other node is freed exactly when asked")
	if emitter_gone:
		assert_eq(state["calls"], calls_after_free, label + "nothing is delivered after the emitter was freed")
	if action == "call_back":
		assert_eq(state["result"], OK, label + "a call made from inside the handler succeeds")
	assert_true(await echo_works(witness_server, witness_client), label + "an unrelated server and client keep echoing")
	for node in [parent, other, server, client]:
		if is_instance_valid(node):
			node.free()
