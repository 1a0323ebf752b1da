extends Node
## The "Game" node of every conformance branch (res://tests/conformance_world.gd): RPCs in
## the three transfer modes on several channels. Each arrival is kept in `got` as
## [name, sender, value] and reported to the world's trace, as a game would see it.

## The ConformanceWorld that records this branch's trace; set before the node enters the tree.
var world: Node
## This branch's name in the trace ("S", "A", ...).
var branch_name := ""
var got: Array = []


func _record(what: String, value: Variant) -> void:
	var sender := multiplayer.get_remote_sender_id()
	got.append([what, sender, value])
	if world != null:
		world.rpc_arrived(branch_name, what, sender, value)


@rpc("any_peer", "call_remote", "reliable", 0)
func rel0(value: Variant) -> void:
	_record("rel0", value)


@rpc("any_peer", "call_remote", "reliable", 2)
func rel2(value: Variant) -> void:
	_record("rel2", value)


@rpc("any_peer", "call_remote", "unreliable_ordered", 0)
func uo0(value: Variant) -> void:
	_record("uo0", value)


@rpc("any_peer", "call_remote", "unreliable_ordered", 1)
func uo1(value: Variant) -> void:
	_record("uo1", value)


@rpc("any_peer", "call_remote", "unreliable", 0)
func un0(value: Variant) -> void:
	_record("un0", value)


@rpc("any_peer", "call_remote", "unreliable", 3)
func un3(value: Variant) -> void:
	_record("un3", value)


## Values of `what` from `sender` (0 = anyone), in arrival order.
func values(what: String, sender := 0) -> Array:
	var out := []
	for g: Array in got:
		if g[0] == what and (sender == 0 or g[1] == sender):
			out.append(g[2])
	return out
