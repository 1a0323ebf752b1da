extends NetkitTest
## Exercises the runner and NetkitTest themselves, with plain Godot only, so a
## broken harness shows up even when the netkit extension is not built.

signal pair_emitted(a: int, b: String)
signal bare_emitted


func test_runs_on_main_thread() -> void:
	assert_eq(OS.get_thread_caller_id(), OS.get_main_thread_id(), "tests run on the main thread")
	assert_true(is_inside_tree(), "the runner adds the test node to the tree")


func test_await_timer() -> void:
	# Start on a frame boundary: a timer counts frame deltas, and the first delta also
	# covers the part of the current frame that ran before the timer was made.
	await wait_frames(1)
	var start := Time.get_ticks_msec()
	await wait_seconds(0.2)
	await wait_frames(2)
	assert_ge(Time.get_ticks_msec() - start, 150, "wait_seconds(0.2) waited")


func test_assert_eq_is_type_strict() -> void:
	var probe := NetkitTest.new()
	assert_true(probe.assert_eq(1, 1), "1 == 1")
	assert_false(probe.failed(), "no failure recorded for equal values")
	assert_false(probe.assert_eq(1, 1.0), "1 != 1.0")
	assert_false(probe.assert_eq("a", &"a"), "String != StringName")
	assert_false(probe.assert_eq([1, 2], [1, 2.0]), "arrays compare strictly")
	assert_false(probe.assert_eq({"k": 1}, {"k": 1.0}), "dictionaries compare strictly")
	assert_true(probe.assert_eq({"k": [1, "x"]}, {"k": [1, "x"]}), "deep equal")
	assert_true(probe.assert_ne(1, 1.0), "assert_ne is strict too")
	assert_eq(probe.failures().size(), 4, "each failed assertion recorded once")
	assert_contains(probe.failures()[0], "(int)", "failure message names the types")
	probe.free()


func test_wait_signal_returns_arguments() -> void:
	get_tree().create_timer(0.05).timeout.connect(func() -> void: pair_emitted.emit(7, "seven"))
	var args: Variant = await wait_signal(pair_emitted, 5.0)
	assert_eq(args, [7, "seven"], "signal arguments as an Array")
	get_tree().create_timer(0.05).timeout.connect(func() -> void: bare_emitted.emit())
	assert_eq(await wait_signal(bare_emitted, 5.0), [], "no-argument signal gives []")


func test_wait_signal_timeout_and_wait_until() -> void:
	var start := Time.get_ticks_msec()
	assert_null(await wait_signal(bare_emitted, 0.2, false), "timeout gives null")
	assert_false(failed(), "fail_on_timeout=false records nothing")
	assert_ge(Time.get_ticks_msec() - start, 150, "waited for the timeout")
	var flag := {"set": false}
	get_tree().create_timer(0.1).timeout.connect(func() -> void: flag["set"] = true)
	assert_true(await wait_until(func() -> bool: return flag["set"], 5.0), "wait_until sees the flag")
	assert_false(await wait_until(func() -> bool: return false, 0.1), "wait_until times out")


func test_env_reads_user_args() -> void:
	assert_eq(env("no-such-argument", "fallback"), "fallback", "default for a missing key")
	assert_false(has_env("no-such-argument"))
	if has_env("selftest-echo"):
		assert_eq(env("selftest-echo"), "hello world", "value after --selftest-echo=")
