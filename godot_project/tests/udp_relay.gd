extends Node
## A UDP relay polled every frame, between DTLS clients and a server in the same process:
## like a phone that changes networks it can move to a new source address and port
## towards the server (`move_to`, any address of 127/8), and like a tunnel it can go dark
## both ways for a while (`black_out`). One client at a time.

var port := 0
var _front := PacketPeerUDP.new()
var _back: PacketPeerUDP
var _server_port := 0
var _client_ip := ""
var _client_port := 0
var _dark_until := 0


## Listens on 127.0.0.1 and forwards to the server on 127.0.0.1:`server_port` from `source`.
func start(server_port: int, source: String) -> Error:
	_server_port = server_port
	var err := _front.bind(0, "127.0.0.1")
	if err != OK:
		return err
	port = _front.get_local_port()
	return move_to(source)


## From now on the server sees the client at `source` and a new port; what the server sends
## to the old address is lost.
func move_to(source: String) -> Error:
	if _back != null:
		_back.close()
	_back = PacketPeerUDP.new()
	var err := _back.bind(0, source)
	if err != OK:
		return err
	return _back.set_dest_address("127.0.0.1", _server_port)


## Drops every datagram, both ways, for `seconds`.
func black_out(seconds: float) -> void:
	_dark_until = Time.get_ticks_msec() + int(seconds * 1000.0)


func _process(_delta: float) -> void:
	var dark := Time.get_ticks_msec() < _dark_until
	while _front.get_available_packet_count() > 0:
		var d := _front.get_packet()
		_client_ip = _front.get_packet_ip()
		_client_port = _front.get_packet_port()
		if not dark:
			_back.put_packet(d)
	while _back != null and _back.get_available_packet_count() > 0:
		var d := _back.get_packet()
		if not dark and _client_port != 0:
			_front.set_dest_address(_client_ip, _client_port)
			_front.put_packet(d)


func _exit_tree() -> void:
	_front.close()
	if _back != null:
		_back.close()
