extends Node
## The RPC endpoints of mp_bench.gd; the same node path in the server and the client
## process, so RPCs resolve.

## Server: RPCs of the throughput phase handled, and how many arrived out of order.
var received := 0
var out_of_order := 0
## Server: one-way delivery time of each `ping` (ms), from the sender's system clock to
## the handler's (both processes run on one machine, so they share that clock).
var one_way_ms: PackedFloat64Array = []
## Client: the server's latest `progress`, and the round trips measured (µs).
var acknowledged := 0
var round_trips: PackedInt64Array = []


@rpc("any_peer", "call_remote", "reliable")
func ping(sent_usec: int, sent_unix: float) -> void:
	one_way_ms.append((Time.get_unix_time_from_system() - sent_unix) * 1000.0)
	pong.rpc_id(multiplayer.get_remote_sender_id(), sent_usec)


@rpc("authority", "call_remote", "reliable")
func pong(sent_usec: int) -> void:
	round_trips.append(Time.get_ticks_usec() - sent_usec)


@rpc("any_peer", "call_remote", "reliable")
func count(n: int) -> void:
	if n != received:
		out_of_order += 1
	received += 1


@rpc("authority", "call_remote", "reliable")
func progress(handled: int) -> void:
	acknowledged = maxi(acknowledged, handled)
