extends RefCounted
## A DTLSMultiplayerPeer server and its clients in one process: each on its own branch
## node with its own SceneMultiplayer (`SceneTree.set_multiplayer`), under a test node.
## `close()` takes them down in the order that leaves nothing behind: peers, then
## nodes, then the multiplayers.

var ident := DTLSPeer.generate_self_signed("localhost")
var _test: Node
var _paths: Array[NodePath] = []


func _init(test: Node) -> void:
	_test = test


## A new branch named `branch_name` with its own SceneMultiplayer.
func branch(branch_name: String) -> Node:
	var b := Node.new()
	b.name = branch_name
	_test.add_child(b)
	_test.get_tree().set_multiplayer(SceneMultiplayer.new(), b.get_path())
	_paths.append(b.get_path())
	return b


func mp_of(b: Node) -> SceneMultiplayer:
	return _test.get_tree().get_multiplayer(b.get_path()) as SceneMultiplayer


## A server on 127.0.0.1 (a free port) as the branch's multiplayer peer.
func start_server(b: Node, extra := {}) -> DTLSMultiplayerPeer:
	var peer := DTLSMultiplayerPeer.new()
	var options := {"certificate": ident.certificate, "private_key": ident.private_key, "bind_address": "127.0.0.1"}
	options.merge(extra)
	if peer.create_server(0, options) != OK:
		return null
	mp_of(b).multiplayer_peer = peer
	return peer


## A client of the server on `port` as the branch's multiplayer peer.
func start_client(b: Node, port: int, extra := {}) -> DTLSMultiplayerPeer:
	var peer := DTLSMultiplayerPeer.new()
	var options := {"pinned_sha256": ident.sha256_fingerprint}
	options.merge(extra)
	if peer.create_client("127.0.0.1", port, options) != OK:
		return null
	mp_of(b).multiplayer_peer = peer
	return peer


func close() -> void:
	for path in _paths:
		var mp := _test.get_tree().get_multiplayer(path) as SceneMultiplayer
		if mp != null and mp.multiplayer_peer != null:
			mp.multiplayer_peer.close()
	await _frames(2)
	for path in _paths:
		var b := _test.get_node_or_null(path)
		if b != null:
			b.free()
	await _frames(2)
	for path in _paths:
		_test.get_tree().set_multiplayer(null, path)
	_paths.clear()
	await _frames(2)


func _frames(n: int) -> void:
	for i in n:
		await _test.get_tree().process_frame
