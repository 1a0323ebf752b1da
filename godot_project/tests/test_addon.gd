extends NetkitTest
## The addon's integration with the editor and engine: ProjectSettings, Performance
## monitors, class docs.


func test_project_settings_are_registered() -> void:
	assert_true(ProjectSettings.has_setting("netkit/runtime/worker_threads"))
	assert_eq(ProjectSettings.get_setting("netkit/runtime/worker_threads"), 2)
	assert_eq(ProjectSettings.get_setting("netkit/debug/stats_log_interval"), 0.0)


func test_performance_monitors_count_requests() -> void:
	for name in ["netkit/http_in_flight", "netkit/http_queued", "netkit/dtls_peers"]:
		assert_true(Performance.has_custom_monitor(name), name)
	var pool := HTTPPool.new()
	pool.base_url = env("http-url")
	pool.max_concurrent = 2
	add_child(pool)
	var tasks: Array[HTTPTask] = []
	for i in 5:
		tasks.append(pool.fetch("/delay?ms=500"))
	assert_eq(Performance.get_custom_monitor("netkit/http_in_flight"), 2)
	assert_eq(Performance.get_custom_monitor("netkit/http_queued"), 3)
	pool.cancel_all()
	await wait_until(func() -> bool: return tasks.all(func(t): return t.is_done()), 5.0)
	assert_eq(Performance.get_custom_monitor("netkit/http_in_flight"), 0)


func test_defaults_are_sensible() -> void:
	var pool := HTTPPool.new()
	assert_eq(pool.max_concurrent, 8)
	assert_eq(pool.max_queued, 1024)
	assert_eq(pool.timeout, 30.0)
	assert_eq(pool.max_retries, 2)
	assert_eq(pool.verify_tls, true)
	assert_eq(pool.max_body_bytes, 16 * 1024 * 1024)
	assert_true(pool.user_agent.begins_with("godot-netkit/"))
	pool.free()


func test_dtls_monitor_counts_peers() -> void:
	var keys := DTLSPeer.generate_self_signed()
	var server := DTLSPeer.new()
	add_child(server)
	assert_eq(server.start_server(0, {"certificate": keys["certificate"], "private_key": keys["private_key"]}), OK)
	var client := DTLSPeer.new()
	add_child(client)
	assert_eq(client.connect_to_server("127.0.0.1", server.get_local_port(), {"pinned_sha256": keys["sha256_fingerprint"]}), OK)
	assert_not_null(await wait_signal(client.peer_connected, 10.0))
	assert_true(await wait_until(func() -> bool: return Performance.get_custom_monitor("netkit/dtls_peers") == 2, 5.0),
			"one peer on each side")
	client.close()
	server.close()
	assert_true(await wait_until(func() -> bool: return Performance.get_custom_monitor("netkit/dtls_peers") == 0, 5.0))
	assert_eq(Netkit.get_stats()["dtls_peers"], 0)
