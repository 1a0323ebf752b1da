extends NetkitTest
const TIMEOUT := 1.5

func test_hangs_awaiting() -> void:
	await wait_seconds(1000.0)

func test_hangs_then_next_runs() -> void:
	assert_true(true)

func test_busy_loop() -> void:
	while true:
		pass
