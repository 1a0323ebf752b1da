extends Node
## One run of a conformance scenario over one transport ("enet": Godot's
## ENetMultiplayerPeer, or "dtls": netkit's DTLSMultiplayerPeer), and the event trace
## that SceneMultiplayer and the game saw in it.
##
## Every branch ("S" for the server, "A", "B", ... for clients) is a node with its own
## SceneMultiplayer (`SceneTree.set_multiplayer`) and a "Game" node
## (res://tests/conformance_game.gd). Per branch the trace holds, in order:
## - every SceneMultiplayer signal, with the peer's status and own id at that moment
##   ("peer_connected 1 [CONNECTED A]"),
## - what the script could read from the peer whenever it changed, as seen at
##   `process_frame`, i.e. after SceneMultiplayer's poll and before deferred calls
##   ("status CONNECTED id A"): the moment a game awaiting `process_frame` acts on it,
## - reliable RPCs and `send_bytes` packets as they arrive, runs of consecutive ints
##   folded ("rpc rel0 from A 0..199"); consecutive RPC arrivals are grouped by RPC and
##   sender, since neither transport orders different channels or senders,
## - what the scenario did (">> close()").
## Peer ids are shown as labels: 1 stays "1", a client's id becomes its branch name, any
## other id "X1", "X2"... in order of appearance. Traces are compared per branch: the
## order within a branch is what a game depends on; the interleaving of branches (which
## are separate processes in a real game) and frame numbers are not compared.

const Game := preload("res://tests/conformance_game.gd")
const ENET := "enet"
const DTLS := "dtls"
## Reliable RPCs are traced; unreliable ones may be lost, so scenarios check them apart.
const TRACED_RPCS := ["rel0", "rel2"]

var transport := ""
## From DTLSPeer.generate_self_signed(), for the DTLS server and the clients' pin.
var ident: Dictionary
## The server's UDP port once `server()` ran.
var port := 0

var _branches := {}  # name -> Node
var _paths: Array[NodePath] = []
var _names: Array[String] = []
var _entries: Array = []  # [branch, format, ids]
var _ids := {}  # client unique id -> branch name
var _seen := {}  # branch -> last "status ... id ..." text
var _servers := {}  # names of server branches
var _quiet := false  # set by teardown(): no more reason lines


func _init(transport_: String, ident_: Dictionary) -> void:
	transport = transport_
	ident = ident_
	name = "World_" + transport_


func _ready() -> void:
	get_tree().process_frame.connect(_watch)


func _exit_tree() -> void:
	if get_tree().process_frame.is_connected(_watch):
		get_tree().process_frame.disconnect(_watch)


# --- branches and peers -------------------------------------------------------------

## A branch with its own SceneMultiplayer, a "Game" node, and every signal traced.
func branch(n: String) -> Node:
	var b := Node.new()
	b.name = n
	add_child(b)
	var g := Game.new()
	g.name = "Game"
	g.world = self
	g.branch_name = n
	b.add_child(g)
	var mp := SceneMultiplayer.new()
	get_tree().set_multiplayer(mp, b.get_path())
	for sig in ["peer_connected", "peer_disconnected", "peer_authenticating", "peer_authentication_failed"]:
		mp.connect(sig, _on_id_signal.bind(sig, n))
	for sig in ["connected_to_server", "connection_failed", "server_disconnected"]:
		mp.connect(sig, _on_plain_signal.bind(sig, n))
	mp.peer_packet.connect(_on_packet.bind(n))
	_branches[n] = b
	_paths.append(b.get_path())
	_names.append(n)
	return b


func mp(n: String) -> SceneMultiplayer:
	if not _branches.has(n) or not is_instance_valid(_branches[n]):
		return null
	return get_tree().get_multiplayer(_branches[n].get_path()) as SceneMultiplayer


func game(n: String) -> Game:
	return _branches[n].get_node("Game") as Game


func peer(n: String) -> MultiplayerPeer:
	var m := mp(n)
	return m.multiplayer_peer if m != null else null


## Starts the server branch `n` on a free port of 127.0.0.1. `options`: "max_clients",
## "refuse" (refuse_new_connections before anyone comes), "port" (this one instead),
## "again" (create_server() on the branch's own closed peer object, not a new one).
## Returns the peer or null.
func server(n: String, options := {}) -> MultiplayerPeer:
	if not _branches.has(n):
		branch(n)
	_servers[n] = true
	var p: MultiplayerPeer
	var err: Error
	var again: MultiplayerPeer = peer(n) if options.get("again", false) else null
	if again != null:
		mp(n).multiplayer_peer = null
	if transport == ENET:
		var e: ENetMultiplayerPeer = again if again != null else ENetMultiplayerPeer.new()
		e.set_bind_ip("127.0.0.1")
		err = e.create_server(int(options.get("port", free_udp_port())), int(options.get("max_clients", 32)))
		if err == OK:
			port = e.host.get_local_port()
		p = e
	else:
		var d: Object = again if again != null else ClassDB.instantiate("DTLSMultiplayerPeer")
		var opts := {"certificate": ident.certificate, "private_key": ident.private_key, "bind_address": "127.0.0.1"}
		if options.has("max_clients"):
			opts["max_clients"] = int(options["max_clients"])
		err = d.create_server(int(options.get("port", 0)), opts)
		if err == OK:
			port = d.get_local_port()
		p = d
	act(n, "create_server() = %s" % error_string(err))
	if err != OK:
		return null
	if options.get("refuse", false):
		p.refuse_new_connections = true
	mp(n).multiplayer_peer = p
	return p


## Starts client branch `n` towards the server (or `to_port`). `options`: "fast_timeout"
## (seconds: how long a silent server is waited for, where the transport lets a script
## set it: ENet's `ENetPacketPeer.set_timeout`, DTLS's "idle_timeout"), "dtls" (extra
## DTLSMultiplayerPeer options), "again" (create_client() on the branch's own closed peer
## object, not a new one). The trace records what create_client() returned and the
## status and id the peer reports right after it.
func client(n: String, options := {}, to_port := 0) -> MultiplayerPeer:
	if not _branches.has(n):
		branch(n)
	var target := to_port if to_port != 0 else port
	var p: MultiplayerPeer
	var err: Error
	var fast: float = float(options.get("fast_timeout", 0.0))
	var again: MultiplayerPeer = peer(n) if options.get("again", false) else null
	if transport == ENET:
		var e: ENetMultiplayerPeer = again if again != null else ENetMultiplayerPeer.new()
		err = e.create_client("127.0.0.1", target)
		if err == OK and fast > 0.0:
			var ms := int(fast * 1000.0)
			e.get_peer(1).set_timeout(32, ms / 2, ms)
		p = e
	else:
		var d: Object = again if again != null else ClassDB.instantiate("DTLSMultiplayerPeer")
		var opts := {"pinned_sha256": ident.sha256_fingerprint}
		if fast > 0.0:
			opts["idle_timeout"] = fast
		opts.merge(options.get("dtls", {}))
		err = d.create_client("127.0.0.1", target, opts)
		p = d
	var id := p.get_unique_id()
	if id > 1:
		_ids[id] = n
	act(n, "create_client() = %s, then %s id %s" % [error_string(err), status_name(p.get_connection_status()), "%s"], [id])
	mp(n).multiplayer_peer = p
	# What create_client() left is in the line above; the watcher notes only changes.
	_seen[n] = _state_text(n) + ":" + str(_state_id(n))
	return p


## A UDP port of 127.0.0.1 that nothing listens on right now.
static func free_udp_port() -> int:
	var u := PacketPeerUDP.new()
	u.bind(0, "127.0.0.1")
	var p := u.get_local_port()
	u.close()
	return p


## True once every client branch in `names` is connected as the game sees it
## (connected_to_server emitted).
func connected(names: Array) -> bool:
	for n: String in names:
		if not has_event(n, "connected_to_server"):
			return false
	return true


## Closes every peer, frees every branch, then drops their SceneMultiplayers.
func teardown() -> void:
	_quiet = true
	# The peer leaves SceneMultiplayer before it closes: spawned nodes and synchronizers
	# that live on a few frames must not read a closed ENet peer (which logs an error).
	for n in _names:
		var p := peer(n)
		if p != null:
			mp(n).multiplayer_peer = null
			p.close()
	await get_tree().process_frame
	await get_tree().process_frame
	for n in _names:
		if is_instance_valid(_branches[n]):
			_branches[n].free()
	await get_tree().process_frame
	for path in _paths:
		get_tree().set_multiplayer(null, path)
	await get_tree().process_frame


# --- the trace ------------------------------------------------------------------------

## Records something the scenario did on branch `n`; `%s` in `what` are peer ids from `ids`.
func act(n: String, what: String, ids := []) -> void:
	_entries.append([n, ">> " + what, ids])


## Records an observation on branch `n` (same format as act()).
func note(n: String, what: String, ids := []) -> void:
	_entries.append([n, what, ids])


## True when branch `n`'s trace holds an event whose text starts with `prefix`
## (e.g. "peer_connected", "server_disconnected").
func has_event(n: String, prefix: String) -> bool:
	return count_events(n, prefix) > 0


func count_events(n: String, prefix: String) -> int:
	var c := 0
	for e: Array in _entries:
		if e[0] == n and (e[1] as String).begins_with(prefix):
			c += 1
	return c


## The trace of branch `n` as text lines, ids as labels, runs of consecutive int RPCs
## folded.
func trace(n: String) -> PackedStringArray:
	var unknown := {}
	var lines := PackedStringArray()
	var rpcs: Array = []  # consecutive RPC lines, stably sorted by RPC (channel) below
	for e: Array in _entries:
		if e[0] != n:
			continue
		var labels := []
		for id: int in e[2]:
			labels.append(label(id, unknown))
		var text: String = e[1] % labels if not labels.is_empty() else e[1]
		if text.begins_with("rpc "):
			# Key: "rpc NAME from SENDER": one order per channel and sender.
			rpcs.append([" ".join(text.split(" ").slice(0, 4)), rpcs.size(), text])
			continue
		_flush_rpcs(rpcs, lines)
		lines.append(text)
	_flush_rpcs(rpcs, lines)
	var out := PackedStringArray()
	var run := {}  # the run of int RPCs being folded: prefix, first, last
	for text in lines:
		var m := _int_rpc_re.search(text)
		if m != null:
			var v := m.get_string(2).to_int()
			if not run.is_empty() and run["prefix"] == m.get_string(1) and run["last"] + 1 == v:
				run["last"] = v
				continue
			_flush_run(run, out)
			run = {"prefix": m.get_string(1), "first": v, "last": v}
			continue
		_flush_run(run, out)
		run = {}
		out.append(text)
	_flush_run(run, out)
	return out


## Every branch's trace, as "branch: line" lines, for printing.
func dump() -> String:
	var lines := PackedStringArray()
	for n in _names:
		for line in trace(n):
			lines.append("  [%s] %s: %s" % [transport, n, line])
	return "\n".join(lines)


func branch_names() -> Array[String]:
	return _names


func label(id: int, unknown := {}) -> String:
	if id == 1 or id == 0:
		return str(id)
	if _ids.has(id):
		return _ids[id]
	if id < 0 and _ids.has(-id):
		return "-" + _ids[-id]
	if not unknown.has(id):
		unknown[id] = "X%d" % (unknown.size() + 1)
	return unknown[id]


static func status_name(s: int) -> String:
	match s:
		MultiplayerPeer.CONNECTION_DISCONNECTED:
			return "DISCONNECTED"
		MultiplayerPeer.CONNECTION_CONNECTING:
			return "CONNECTING"
		MultiplayerPeer.CONNECTION_CONNECTED:
			return "CONNECTED"
	return "status %d" % s


## Called by the Game node for every RPC that arrives.
func rpc_arrived(n: String, what: String, sender: int, value: Variant) -> void:
	if not what in TRACED_RPCS:
		return
	if value is int:
		_entries.append([n, "rpc %s from %%s %d" % [what, value], [sender]])
	else:
		_entries.append([n, "rpc %s from %%s %s" % [what, _show(value)], [sender]])


# --- internals ------------------------------------------------------------------------

var _int_rpc_re := RegEx.create_from_string("^(rpc \\S+ from \\S+) (-?\\d+)$")


## RPCs on different channels, or from different senders, have no order between them (on
## either transport): a run of RPC arrivals with no other event between them is listed by
## RPC (channel) and sender, each stream's own order kept.
func _flush_rpcs(rpcs: Array, lines: PackedStringArray) -> void:
	rpcs.sort_custom(func(x: Array, y: Array) -> bool: return x[0] < y[0] or (x[0] == y[0] and x[1] < y[1]))
	for r: Array in rpcs:
		lines.append(r[2])
	rpcs.clear()


func _flush_run(run: Dictionary, out: PackedStringArray) -> void:
	if run.is_empty():
		return
	if run["first"] == run["last"]:
		out.append("%s %d" % [run["prefix"], run["first"]])
	else:
		out.append("%s %d..%d" % [run["prefix"], run["first"], run["last"]])


static func _show(value: Variant) -> String:
	if value is PackedByteArray:
		return "<%d bytes, sha256 %s>" % [value.size(), _digest(value).substr(0, 12)]
	return var_to_str(value)


static func _digest(bytes: PackedByteArray) -> String:
	var ctx := HashingContext.new()
	ctx.start(HashingContext.HASH_SHA256)
	ctx.update(bytes)
	return ctx.finish().hex_encode()


func _state_text(n: String) -> String:
	var p := peer(n)
	if p == null:
		return "no peer"
	if p.get_connection_status() == MultiplayerPeer.CONNECTION_DISCONNECTED:
		return "DISCONNECTED"
	return "%s id %%s" % status_name(p.get_connection_status())


## The peer's own id; 0 without a peer or once it is disconnected (where ENet's
## get_unique_id() fails with an error and DTLS's still gives the old id).
func _state_id(n: String) -> int:
	var p := peer(n)
	if p == null or p.get_connection_status() == MultiplayerPeer.CONNECTION_DISCONNECTED:
		return 0
	return p.get_unique_id()


## Once per frame, at process_frame: what a script can read from each peer.
func _watch() -> void:
	for n in _names:
		if mp(n) == null:
			continue
		var id := _state_id(n)
		var p := peer(n)
		if id > 1 and not _servers.has(n):
			_ids[id] = n
		var key := _state_text(n) + ":" + str(id)
		if _seen.get(n, "") == key:
			continue
		_seen[n] = key
		if p == null:
			note(n, "no peer")
		elif id == 0:
			note(n, "status " + _state_text(n).replace("%s", "0"))
		else:
			note(n, "status " + _state_text(n), [id])


func _suffix(n: String) -> Array:
	var p := peer(n)
	if p == null:
		return [" [no peer]", []]
	if p.get_connection_status() == MultiplayerPeer.CONNECTION_DISCONNECTED:
		return [" [DISCONNECTED]", []]
	return [" [%s %%s]" % status_name(p.get_connection_status()), [p.get_unique_id()]]


func _on_id_signal(id: int, sig: String, n: String) -> void:
	var id_now := _state_id(n)
	if id_now > 1 and not _servers.has(n):
		_ids[id_now] = n
	var s := _suffix(n)
	_entries.append([n, sig + " %s" + s[0], [id] + s[1]])
	_print_reason(n, sig)


func _on_plain_signal(sig: String, n: String) -> void:
	var s := _suffix(n)
	_entries.append([n, sig + s[0], s[1]])
	_print_reason(n, sig)


## DTLS only (ENet has no reasons): prints why a peer left, for the report.
func _print_reason(n: String, sig: String) -> void:
	var p := peer(n)
	if transport == DTLS and not _quiet and p != null and sig in ["peer_disconnected", "server_disconnected", "connection_failed", "peer_authentication_failed"]:
		print("  [dtls] %s: %s -> get_last_disconnect_reason(): \"%s\"" % [n, sig, p.get_last_disconnect_reason()])


func _on_packet(id: int, packet: PackedByteArray, n: String) -> void:
	_entries.append([n, "bytes from %%s %s" % packet.get_string_from_utf8(), [id]])
