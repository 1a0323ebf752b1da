extends Node
## The node every multiplayer test branch holds at the same relative path ("Game"): RPCs
## in every transfer mode on several channels, each recording [name, sender, value].

var got: Array = []


func _record(what: String, value: Variant) -> void:
	got.append([what, multiplayer.get_remote_sender_id(), value])


@rpc("any_peer", "call_remote", "reliable", 0)
func rel0(value: Variant) -> void:
	_record("rel0", value)


@rpc("any_peer", "call_remote", "reliable", 2)
func rel2(value: Variant) -> void:
	_record("rel2", value)


@rpc("any_peer", "call_remote", "unreliable_ordered", 1)
func uo1(value: Variant) -> void:
	_record("uo1", value)


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
