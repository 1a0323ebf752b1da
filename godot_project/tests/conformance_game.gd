extends "res://tests/mp_game.gd"
## The "Game" node of every conformance branch (res://tests/conformance_world.gd): the RPCs
## of the multiplayer tests' game (mp_game.gd) plus unreliable ones on channel 0. Each
## arrival is kept in `got` as [name, sender, value] and reported to the world's trace, as
## a game would see it.

## The ConformanceWorld that records this branch's trace; set before the node enters the tree.
var world: Node
## This branch's name in the trace ("S", "A", ...).
var branch_name := ""


func _record(what: String, value: Variant) -> void:
	super(what, value)
	if world != null:
		world.rpc_arrived(branch_name, what, multiplayer.get_remote_sender_id(), value)


@rpc("any_peer", "call_remote", "unreliable_ordered", 0)
func uo0(value: Variant) -> void:
	_record("uo0", value)


@rpc("any_peer", "call_remote", "unreliable", 0)
func un0(value: Variant) -> void:
	_record("un0", value)
