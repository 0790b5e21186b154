/* The sglc API server behind `sglc launch_server`: SGLang's native routes and the OpenAI-
 * compatible ones over one HTTP loop, in front of one engine.
 *
 * Promises: the HTTP loop runs on the calling thread and never blocks on the scheduler's work
 * (token events arrive through the engine's eventfd); the server answers 503 until the engine
 * is ready; SIGTERM/SIGINT stop accepting, give in-flight requests a grace period, then abort
 * them. server_run returns the process exit status: 0 after a clean shutdown, 1 when start-up
 * fails at run time (bind, model load), 2 for a configuration the engine refuses. */
#ifndef SGLC_SERVER_SERVER_H
#define SGLC_SERVER_SERVER_H

#include "config/server_args.h"

/* Seconds that in-flight requests get after SIGTERM/SIGINT. */
#define SERVER_SHUTDOWN_GRACE_S 30.0

int server_run(const server_args *args);

#endif
