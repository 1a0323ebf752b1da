extends NetkitTest
## Simulated network conditions on a DTLSMultiplayerPeer pair, both ends in this process,
## through the MultiplayerPeer API (what SceneMultiplayer sits on). Statistical with fixed
## seeds: lower bounds firm, upper bounds generous enough for a loaded machine.

const TIMEOUT := 90.0


var ident: Dictionary
var server: DTLSMultiplayerPeer
var client: DTLSMultiplayerPeer
var server_peers: Array[int] = []
var server_left: Array[int] = []


func _ready() -> void:
	ident = DTLSPeer.generate_self_signed("localhost")


func after_each() -> void:
	Netkit.simulate_network({})
	for p in [client, server]:
		if p != null:
			p.close()
	client = null
	server = null
	server_peers.clear()
	server_left.clear()


func poll_both() -> void:
	for p in [server, client]:
		if p != null:
			p.poll()


## Polls both peers once a frame until `cond` holds or `timeout_s` passes.
func pump_until(cond: Callable, timeout_s: float) -> bool:
	var deadline := Time.get_ticks_msec() + int(timeout_s * 1000.0)
	while Time.get_ticks_msec() < deadline:
		poll_both()
		if cond.call():
			return true
		await get_tree().process_frame
	return false


func connect_pair(server_extra := {}, client_extra := {}) -> bool:
	server = DTLSMultiplayerPeer.new()
	var so := {"certificate": ident.certificate, "private_key": ident.private_key, "bind_address": "127.0.0.1"}
	so.merge(server_extra)
	assert_eq(server.create_server(0, so), OK)
	server.peer_connected.connect(func(id: int): server_peers.append(id))
	server.peer_disconnected.connect(func(id: int): server_left.append(id))
	client = DTLSMultiplayerPeer.new()
	var co := {"pinned_sha256": ident.sha256_fingerprint}
	co.merge(client_extra)
	assert_eq(client.create_client("127.0.0.1", server.get_local_port(), co), OK)
	var ok := await pump_until(func():
		return client.get_connection_status() == MultiplayerPeer.CONNECTION_CONNECTED \
			and server_peers.size() == 1, 20.0)
	assert_true(ok, "the pair connects under the simulated conditions")
	return ok


## Sends `n` reliable packets carrying their index from the client and returns what the
## server received, in order.
func reliable_indices(n: int, timeout_s: float) -> Array[int]:
	client.set_target_peer(1)
	client.set_transfer_mode(MultiplayerPeer.TRANSFER_MODE_RELIABLE)
	for i in n:
		client.put_packet(var_to_bytes(i))
	var got: Array[int] = []
	await pump_until(func():
		while server.get_available_packet_count() > 0:
			got.append(bytes_to_var(server.get_packet()))
		return got.size() >= n, timeout_s)
	return got


## `latency=100ms` applies to what each side sends: 100 ms each way, so a round trip
## takes at least 200 ms.
func test_latency_adds_to_every_round_trip() -> void:
	assert_eq(Netkit.simulate_network({"latency": "100ms", "seed": 1}), OK)
	if not await connect_pair():
		return
	var rtts: Array[float] = []
	client.set_target_peer(1)
	for i in 15:
		client.set_transfer_mode(MultiplayerPeer.TRANSFER_MODE_RELIABLE)
		client.put_packet(var_to_bytes(Time.get_ticks_usec()))
		var back := [false]
		var ok := await pump_until(func():
			while server.get_available_packet_count() > 0:
				var pkt := server.get_packet()
				server.set_target_peer(server.get_packet_peer())
				server.set_transfer_mode(MultiplayerPeer.TRANSFER_MODE_RELIABLE)
				server.put_packet(pkt)
			while client.get_available_packet_count() > 0:
				rtts.append((Time.get_ticks_usec() - int(bytes_to_var(client.get_packet()))) / 1000.0)
				back[0] = true
			return back[0], 5.0)
		assert_true(ok, "round trip %d came back" % i)
	rtts.sort()
	var p50: float = rtts[rtts.size() / 2]
	assert_ge(p50, 200.0, "round trip p50 with 100 ms each way: %s" % [rtts])
	assert_lt(p50, 300.0, "round trip p50 with 100 ms each way: %s" % [rtts])
	print("  [simulate] latency=100ms: round trip p50 %.1f ms over %d" % [p50, rtts.size()])
	assert_gt(Performance.get_custom_monitor("netkit/simulated_drops"), -1)


## `loss=20%` each way: unreliable packets arrive at about 80 %; 1,000 reliable ones
## arrive exactly once and in order, through resends.
func test_loss_drops_unreliable_packets_and_reliable_ones_still_arrive_once_in_order() -> void:
	assert_eq(Netkit.simulate_network({"loss": "20%", "seed": 7}), OK)
	if not await connect_pair():
		return
	var drops_before: int = Performance.get_custom_monitor("netkit/simulated_drops")
	client.set_target_peer(1)
	client.set_transfer_mode(MultiplayerPeer.TRANSFER_MODE_UNRELIABLE)
	# One packet a frame, so each goes in a datagram of its own (loss acts on datagrams).
	var received := [0]
	var count_received := func():
		while server.get_available_packet_count() > 0:
			server.get_packet()
			received[0] += 1
		return false
	for i in 300:
		client.set_transfer_mode(MultiplayerPeer.TRANSFER_MODE_UNRELIABLE)
		client.put_packet(var_to_bytes(i))
		poll_both()
		count_received.call()
		await get_tree().process_frame
	await pump_until(count_received, 1.0)
	var share: float = received[0] / 300.0
	assert_ge(share, 0.70, "unreliable delivery through 20%% loss: %d of 300" % received[0])
	assert_le(share, 0.90, "unreliable delivery through 20%% loss: %d of 300" % received[0])
	print("  [simulate] loss=20%%: %d of 300 unreliable packets arrived" % received[0])

	var got := await reliable_indices(1000, 60.0)
	var expected: Array[int] = []
	for i in 1000:
		expected.append(i)
	assert_eq(got.size(), 1000, "every reliable packet arrived")
	assert_true(got == expected, "exactly once and in order")
	assert_gt(Performance.get_custom_monitor("netkit/simulated_drops"), drops_before + 30,
		"the monitor counts what the conditions dropped")
	var stats := client.get_peer_stats(1)
	assert_gt(int(stats.get("resent", 0)), 0, "the client's resends are counted: %s" % stats)


## A client that stops hearing anything (`in:loss=100%` once connected; the server opts out
## with its own empty `simulate`) is dropped by the server, and the client notices too:
## simulated silence is detected like real silence.
func test_a_client_that_hears_nothing_is_dropped_and_notices() -> void:
	if not await connect_pair({"simulate": "", "idle_timeout": 3.0}, {"idle_timeout": 3.0}):
		return
	var started := Time.get_ticks_msec()
	assert_eq(Netkit.simulate_network({"in:loss": "100%"}), OK)
	var ok := await pump_until(func():
		return server_left.size() == 1 \
			and client.get_connection_status() == MultiplayerPeer.CONNECTION_DISCONNECTED, 30.0)
	assert_true(ok, "the server dropped the deaf client and the client noticed (server: %s, client status %d)"
		% [server_left, client.get_connection_status()])
	assert_contains(client.get_last_disconnect_reason(), "silent",
		"the client's reason names the silence")


## Bad input names the token it could not read, and nothing changes.
func test_unreadable_conditions_are_refused_with_the_token_and_change_nothing() -> void:
	assert_eq(Netkit.simulate_network({"latency": "50ms"}), OK)
	expect_error("lag=5")
	assert_eq(Netkit.simulate_network({"lag": "5"}), ERR_INVALID_PARAMETER)
	expect_error("loss=150%")
	assert_eq(Netkit.simulate_network({"loss": "150%"}), ERR_INVALID_PARAMETER)
	var peer := DTLSMultiplayerPeer.new()
	expect_error("latency=fast")
	var err := peer.create_client("127.0.0.1", 9, {"pinned_sha256": ident.sha256_fingerprint, "simulate": "latency=fast"})
	assert_ne(err, OK, "an unreadable simulate option fails create_client")


## HTTP: `latency=200ms` delays every attempt before it is sent; `failure=50%` turns half the
## attempts into refused connections or 503s, which the retry policy handles: with
## `max_retries = 8` every GET completes, after about 2 attempts on average.
func test_http_latency_delays_requests_and_failures_reach_the_retry_policy() -> void:
	var url := env("http-url")
	if url == "":
		fail("no --http-url given: run the suite through `cargo test`")
		return
	var pool := http_pool(url, {"retry_base_delay": 0.01, "retry_max_delay": 0.05, "max_retries": 8}) as HTTPPool
	assert_eq(Netkit.simulate_network({"latency": "200ms"}), OK)
	var started := Time.get_ticks_msec()
	var res: HTTPResponse = (await wait_signal(pool.fetch("/json").completed, 15.0))[0]
	var took := Time.get_ticks_msec() - started
	assert_true(res.ok, res.error_message)
	assert_ge(took, 200, "a request under latency=200ms takes at least 200 ms")
	print("  [simulate] HTTP latency=200ms: one GET took %d ms" % took)

	# Seeded and one after another, so the run repeats (in parallel, which request meets
	# which draw would vary; nine failures in a row, 1 in 512 per request, would then
	# fail the test now and then).
	assert_eq(Netkit.simulate_network({"failure": "50%", "seed": 11}), OK)
	var attempts := 0
	var ok := 0
	for i in 40:
		var r: HTTPResponse = (await wait_signal(pool.fetch("/json").completed, 30.0))[0]
		ok += int(r.ok)
		attempts += r.attempts
	var mean := attempts / 40.0
	assert_eq(ok, 40, "every GET completed through simulated failures")
	assert_gt(mean, 1.4, "failures cost attempts: mean %.2f" % mean)
	assert_lt(mean, 3.0, "about 2 attempts each: mean %.2f" % mean)
	print("  [simulate] HTTP failure=50%%: 40 of 40 GETs completed, %.2f attempts on average" % mean)

	# The pool's own property beats the process: this one stays clean.
	var clean := http_pool(url, {"simulate": "latency=0ms", "max_retries": 0}) as HTTPPool
	var fails := 0
	for i in 20:
		var r: HTTPResponse = (await wait_signal(clean.fetch("/json").completed, 15.0))[0]
		fails += int(not r.ok)
	assert_eq(fails, 0, "a pool with its own clean simulate property sees no simulated failure")


## `bandwidth=256kbit` (each way): a megabyte sent reliably arrives once, whole, in at most
## twice the ideal 31 s, with a handful of resends (the link paces what it sends to what
## the path delivers instead of filling the one-second queue with a whole window), and
## the process's memory stays flat.
func test_a_megabyte_through_256kbit_arrives_once_with_few_resends() -> void:
	assert_eq(Netkit.simulate_network({"bandwidth": "256kbit", "seed": 3}), OK)
	if not await connect_pair():
		return
	await pump_until(func(): return false, 2.0)  # a few pings measure the path first
	var big := PackedByteArray()
	big.resize(1_000_000)
	for i in range(0, big.size(), 997):
		big[i] = i % 251
	var rss_before := rss_kib()
	client.set_target_peer(1)
	client.set_transfer_mode(MultiplayerPeer.TRANSFER_MODE_RELIABLE)
	var started := Time.get_ticks_msec()
	assert_eq(client.put_packet(big), OK)
	var got: Array[PackedByteArray] = []
	var ok := await pump_until(func():
		while server.get_available_packet_count() > 0:
			got.append(server.get_packet())
		return got.size() >= 1, 75.0)
	var took := (Time.get_ticks_msec() - started) / 1000.0
	assert_true(ok, "the megabyte arrived")
	assert_eq(got.size(), 1, "exactly once")
	assert_true(got.size() == 1 and got[0] == big, "whole")
	assert_le(took, 62.5, "at most twice the ideal 31.25 s")
	var resent := int(client.get_peer_stats(1).get("resent", -1))
	assert_le(resent, 60, "a handful of resends, not thousands")
	var grown := rss_kib() - rss_before
	assert_lt(grown, 64 * 1024, "memory stays flat: %d KiB more" % grown)
	print("  [simulate] bandwidth=256kbit: 1 MB in %.1f s (ideal 31.25), %d resends, RSS %+d KiB" % [took, resent, grown])


## The process's resident memory, KiB (Linux), or 0 where it cannot be read.
static func rss_kib() -> int:
	var f := FileAccess.open("/proc/self/status", FileAccess.READ)
	if f == null:
		return 0
	for line in f.get_as_text().split("\n"):
		if line.begins_with("VmRSS:"):
			return int(line.split(":")[1].strip_edges().split(" ")[0])
	return 0


## Downloads and streams follow a pool's own `simulate` too: `latency` delays each
## attempt, and with `failure=50%` a download still completes through its retries.
func test_downloads_follow_the_pools_simulated_conditions() -> void:
	var url := env("http-url")
	if url == "":
		fail("no --http-url given: run the suite through `cargo test`")
		return
	var file := "user://netkit_simulate_download.bin"
	var pool := http_pool(url, {"simulate": "latency=300ms", "retry_base_delay": 0.01, "max_retries": 8}) as HTTPPool
	var started := Time.get_ticks_msec()
	var dl := pool.download("/download?bytes=100000", file)
	var res: HTTPResponse = dl.response if dl.is_done() else (await wait_signal(dl.completed, 30.0))[0]
	var took := Time.get_ticks_msec() - started
	assert_true(res.ok, res.error_message)
	assert_ge(took, 300, "a download under latency=300ms takes at least 300 ms")

	pool.simulate = "failure=50% seed=9"
	var ok := 0
	var attempts := 0
	for i in 6:
		DirAccess.remove_absolute(ProjectSettings.globalize_path(file))
		var d := pool.download("/download?bytes=20000", file)
		var r: HTTPResponse = d.response if d.is_done() else (await wait_signal(d.completed, 30.0))[0]
		ok += int(r.ok)
		attempts += r.attempts
	DirAccess.remove_absolute(ProjectSettings.globalize_path(file))
	assert_eq(ok, 6, "every download completed through simulated failures")

	# in:bandwidth paces what arrives: 100,000 bytes at 800 kbit/s take a second, as a
	# download and as a request's body.
	pool.simulate = "in:bandwidth=800kbit"
	var paced_start := Time.get_ticks_msec()
	var paced := pool.download("/download?bytes=100000", file)
	var pr: HTTPResponse = paced.response if paced.is_done() else (await wait_signal(paced.completed, 30.0))[0]
	var paced_ms := Time.get_ticks_msec() - paced_start
	DirAccess.remove_absolute(ProjectSettings.globalize_path(file))
	assert_true(pr.ok, pr.error_message)
	assert_ge(paced_ms, 950, "100 kB through in:bandwidth=800kbit as a download")
	var get_start := Time.get_ticks_msec()
	var gr: HTTPResponse = (await wait_signal(pool.fetch("/download?bytes=100000").completed, 30.0))[0]
	var get_ms := Time.get_ticks_msec() - get_start
	assert_true(gr.ok and gr.body.size() == 100000, gr.error_message)
	assert_ge(get_ms, 950, "100 kB through in:bandwidth=800kbit as a request's body")
	print("  [simulate] in:bandwidth=800kbit: 100 kB took %d ms as a download, %d ms as a GET" % [paced_ms, get_ms])
	assert_gt(attempts, 6, "simulated failures cost attempts: %d for 6 downloads" % attempts)
	print("  [simulate] downloads: latency=300ms took %d ms; failure=50%%: 6 of 6 completed in %d attempts" % [took, attempts])
