/*
 * The recording writer's throughput: one producer thread (standing in for a worker) appends
 * raw data events of --event-size bytes (4 KiB: terminal or byte-stream output) to --sessions
 * recordings round robin, as fast as the writer thread takes them; the writer encrypts, hashes,
 * signs and writes them. Reported: event bytes per second of wall time, and per second of the
 * writer thread's CPU time (MB/s per core, the figure the aim is about), and the producer's
 * cost per event. MB = 10^6 bytes. At the end one recording is read back and checked.
 *
 * usage: audit_writer_bench [--seconds S] [--event-size N] [--chunk-size N] [--sessions K] [--dir D] [--keep]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/format.h"
#include "audit/reader.h"
#include "audit/writer.h"

#define BENCH_SESSIONS_MAX	1024
#define BENCH_AHEAD		(32u << 20)	/* bytes the producer may run ahead of the writer */

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
usage(void)
{
	fprintf(stderr, "usage: audit_writer_bench [--seconds S] [--event-size N] [--chunk-size N] [--sessions K] "
	    "[--dir DIR] [--keep]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	double seconds = 3, t0, t1, pcpu = 0, c0;
	size_t event = 4096, chunk = 64u << 10, nsess = 1;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	bool keep = false;
	char dir[512], path[600], err[512], first[600] = "";
	struct audit_node_key node;
	struct audit_auditor_key aud;
	struct audit_writer_settings set = { .queue_limit = 1u << 30 };
	struct audit_writer_stats st;
	struct audit_rec *recs[BENCH_SESSIONS_MAX];
	uint64_t produced = 0, events = 0;
	uint8_t *buf;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(argv[i], "--keep") == 0) {
			keep = true;
			continue;
		}
		if (v == NULL)
			usage();
		if (strcmp(argv[i], "--seconds") == 0)
			seconds = atof(v);
		else if (strcmp(argv[i], "--event-size") == 0)
			event = (size_t)atol(v);
		else if (strcmp(argv[i], "--chunk-size") == 0)
			chunk = (size_t)atol(v);
		else if (strcmp(argv[i], "--sessions") == 0)
			nsess = (size_t)atol(v);
		else if (strcmp(argv[i], "--dir") == 0)
			base = v;
		else
			usage();
		i++;
	}
	if (seconds <= 0 || seconds > 600 || event == 0 || event > AUDIT_EVENT_MAX || chunk < 4096 || nsess == 0 ||
	    nsess > BENCH_SESSIONS_MAX)
		usage();
	if (sodium_init() < 0)
		return 1;
	snprintf(dir, sizeof(dir), "%s/postern-audit-bench-XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "audit_writer_bench: cannot make a directory under %s: %s\n", base, strerror(errno));
		return 1;
	}
	set.dir = dir;
	snprintf(path, sizeof(path), "%s/auditor.key", dir);
	if (audit_node_key_load(dir, "bench", &node, err, sizeof(err)) != 0 ||
	    audit_key_generate(path, "bench", &aud, err, sizeof(err)) != 0 ||
	    audit_writer_start(&node, &set, err, sizeof(err)) != 0) {
		fprintf(stderr, "audit_writer_bench: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < nsess; i++) {
		char id[17];
		struct audit_rec_info info = { .session = id, .user = "bench", .target = "t", .protocol = "ssh",
			.node = "bench", .start_us = audit_now_us() };

		snprintf(id, sizeof(id), "%016zx", i + 1);
		if ((recs[i] = audit_rec_open(dir, &info, &aud, 1, chunk, err, sizeof(err))) == NULL) {
			fprintf(stderr, "audit_writer_bench: %s\n", err);
			return 1;
		}
		if (i == 0)
			snprintf(first, sizeof(first), "%s", audit_rec_path(recs[i]));
	}
	buf = malloc(event);
	randombytes_buf(buf, event);
	t0 = now_mono();
	c0 = thread_cpu();	/* sleeping while the writer catches up takes no CPU time */
	for (size_t i = 0;; i++) {
		if ((i & 255) == 0) {
			if (now_mono() - t0 >= seconds)
				break;
			audit_writer_get_stats(&st);
			/* Keep just ahead of the writer: measure it, not the queue limit. */
			while (produced - st.bytes_in > BENCH_AHEAD) {
				struct timespec ts = { 0, 100000 };

				nanosleep(&ts, NULL);
				audit_writer_get_stats(&st);
			}
		}
		audit_rec_event(recs[i % nsess], AUDIT_EV_OUTPUT, audit_now_us(), buf, event);
		produced += AUDIT_EVENT_HDR_LEN + event;
		events++;
	}
	pcpu = thread_cpu() - c0;
	for (size_t i = 0; i < nsess; i++)
		audit_rec_close(recs[i]);
	audit_writer_stop();
	t1 = now_mono();
	audit_writer_get_stats(&st);
	{
		struct audit_file f;
		struct audit_check c;
		int r = audit_file_open(first, &f, err, sizeof(err));

		if (r != 0 || audit_file_check(&f, node.pk, &aud, NULL, NULL, &c, err, sizeof(err)) != 0 ||
		    c.verdict != AUDIT_VERDICT_INTACT) {
			fprintf(stderr, "audit_writer_bench: the recording does not verify: %s\n", r ? err : c.what);
			return 1;
		}
		printf("check: %s intact, %llu events decrypted\n", first, (unsigned long long)c.events);
		audit_file_close(&f);
	}
	printf("events: %llu of %zu bytes to %zu recording(s), chunk size %zu, dir %s\n", (unsigned long long)events,
	    event, nsess, chunk, dir);
	printf("writer: %llu chunks, %llu signatures, %.1f MB in, %.1f MB out\n", (unsigned long long)st.chunks,
	    (unsigned long long)st.signatures, (double)st.bytes_in / 1e6, (double)st.bytes_out / 1e6);
	printf("wall MB/s: %.0f\n", (double)st.bytes_in / 1e6 / (t1 - t0));
	printf("writer CPU s: %.3f\n", (double)st.cpu_ns / 1e9);
	printf("MB/s per writer core: %.0f\n", (double)st.bytes_in / 1e6 / ((double)st.cpu_ns / 1e9));
	printf("producer ns per event: %.0f (the worker's side: append, hand over full chunks)\n",
	    pcpu / (double)events * 1e9);
	if (!keep) {
		char cmd[700];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "audit_writer_bench: could not remove %s\n", dir);
	}
	return 0;
}
