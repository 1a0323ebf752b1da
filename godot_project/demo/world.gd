extends Node
## The game world both demo scenes share, at the same path under their SceneMultiplayer
## root (`World`), so RPCs, the spawner and the synchronizers find the same nodes on the
## server and on every client. The server owns it (authority 1): it spawns one player per
## admitted peer, applies moves requested by RPC and replicates positions.

## Emitted on a client when the server acknowledged one of its moves.
signal move_acknowledged(tick: int, position: Vector2)
## Emitted on a client when the server announces something (e.g. that it shuts down).
signal notice_received(text: String)

## Moves farther than this from the origin are refused (a client's RPC is untrusted input).
const WORLD_EXTENT := 10000.0

var players: Node
var spawner: MultiplayerSpawner
## Server side: peer id -> RPCs that reached game code from it (the demo shows that a
## refused peer has none).
var rpcs_from := {}
var ticks := {}


func _init() -> void:
	name = "World"
	players = Node.new()
	players.name = "Players"
	add_child(players)
	spawner = MultiplayerSpawner.new()
	spawner.name = "Spawner"
	add_child(spawner)
	spawner.spawn_path = NodePath("../Players")
	spawner.spawn_function = _make_player


## Server: spawns the player of peer `id` on the server and on every client.
func spawn_player(id: int, player_name: String) -> Node2D:
	return spawner.spawn({"id": id, "name": player_name}) as Node2D


## Server: removes the player of peer `id`, if any (the spawner despawns it everywhere).
func despawn_player(id: int) -> void:
	var p := players.get_node_or_null(str(id))
	if p != null:
		p.queue_free()
	ticks.erase(id)


## The player node of peer `id`, or null.
func player_of(id: int) -> Node2D:
	return players.get_node_or_null(str(id)) as Node2D


## Built the same way on every side from the spawn data; its synchronizer replicates
## `position` (server to clients, reliably on change).
func _make_player(data: Variant) -> Node:
	var p := Node2D.new()
	p.name = str(data["id"])
	p.set_meta("player_name", data["name"])
	var sync := MultiplayerSynchronizer.new()
	sync.name = "Sync"
	var config := SceneReplicationConfig.new()
	config.add_property(NodePath(".:position"))
	config.property_set_spawn(NodePath(".:position"), true)
	config.property_set_replication_mode(NodePath(".:position"), SceneReplicationConfig.REPLICATION_MODE_ON_CHANGE)
	sync.replication_config = config
	p.add_child(sync)
	return p


## Client -> server: move my player to (`x`, `y`).
@rpc("any_peer", "call_remote", "reliable")
func move(x: float, y: float) -> void:
	if not multiplayer.is_server():
		return
	var sender := multiplayer.get_remote_sender_id()
	rpcs_from[sender] = rpcs_from.get(sender, 0) + 1
	var p := player_of(sender)
	if p == null:
		print("[server] move from peer %d, which has no player; ignored" % sender)
		return
	var to := Vector2(x, y)
	if not to.is_finite() or absf(x) > WORLD_EXTENT or absf(y) > WORLD_EXTENT:
		print("[server] peer %d asked for an impossible move %s; ignored" % [sender, to])
		return
	p.position = to
	ticks[sender] = ticks.get(sender, 0) + 1
	acknowledge_move.rpc_id(sender, ticks[sender], to)


## Server -> client: the move was applied at this server tick.
@rpc("authority", "call_remote", "reliable")
func acknowledge_move(tick: int, to: Vector2) -> void:
	move_acknowledged.emit(tick, to)


## Server -> every client: an announcement.
@rpc("authority", "call_remote", "reliable")
func notice(text: String) -> void:
	notice_received.emit(text)
