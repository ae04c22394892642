"""Workers: claim jobs from queues and run them."""
