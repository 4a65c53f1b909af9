"""Training runs: the loop, its progress and stopping, schedules, tf.distribute."""
