/* Eight Python threads allocate (with and without the GIL, in every domain, and through track) for
 * ten seconds while two others stop, start, clear and copy the traces; nothing crashes, and once the
 * churn is over, the traces are exactly what the threads hold: no trace lost, none counted twice.
 * Run twice: as it comes, and with exact mode queueing every table update (five seconds).
 * LEAK_TEST_STRESS_SECONDS shortens or lengthens the ten seconds (sanitizer builds are slower). */
#include "core/internal.h"
#include "tracer/tracer.h"
#include "runner.h"
#include "test-tracer-probe.h"

/* The stress run; with `every_update_queued`, exact mode queues its table updates (pending.h) however
 * small the table, so that the queue sees every thread, start, stop and clear of the churn. */
static int run_stress(int every_update_queued, double default_seconds) {
  tracer_probe_start_python();
  const char *seconds = getenv("LEAK_TEST_STRESS_SECONDS");
  char setup[96];
  snprintf(setup, sizeof setup, "SECONDS = %g\n%s", seconds ? atof(seconds) : default_seconds,
           every_update_queued ? "_tprobe.queue_from(0)\n" : "");
  ASSERT_EQ(test_python_run(setup), 0);
  ASSERT_EQ(test_python_run(
                "import random, threading, time\n"
                "WORKERS, KEEP = 8, 50\n"
                "KINDS = ('raw', 'mem', 'obj', 'raw_nogil')\n"
                "def special(worker, j):\n" /* sizes no other code allocates */
                "    return 100003 + worker * 1000 + j\n"
                "assert _tprobe.start(8) == 0\n"
                "deadline = time.monotonic() + SECONDS\n"
                "settle = threading.Event(); finish = threading.Event()\n"
                "settled = [threading.Event() for _ in range(WORKERS)]\n"
                "held = [[] for _ in range(WORKERS)]\n"
                "errors = []\n"
                "def nested(n, fn):\n"
                "    return fn() if n == 0 else nested(n - 1, fn)\n"
                "def worker(w):\n"
                "    try:\n"
                "        rng = random.Random(w)\n"
                "        mine = []\n"
                "        while not settle.is_set():\n"
                "            kind = rng.choice(KINDS)\n"
                "            if len(mine) < 64 and rng.random() < 0.6:\n"
                "                size = rng.choice((8, 100, 700, 5000, 70000))\n"
                "                mine.append((kind, nested(rng.randrange(12), lambda: _tprobe.alloc(kind, size))))\n"
                "            elif mine:\n"
                "                k, a = mine.pop(rng.randrange(len(mine)))\n"
                "                if rng.random() < 0.3:\n"
                "                    b = _tprobe.realloc(k, a, rng.choice((16, 3000, 90000)))\n"
                "                    mine.append((k, b))\n"
                "                else:\n"
                "                    _tprobe.free(k, a)\n"
                "            if rng.random() < 0.05:\n"
                "                fake = 0x10000 + w * 0x1000 + rng.randrange(16) * 16\n"
                "                _tprobe.track(100 + w, fake, 64, rng.random() < 0.5)\n"
                "                _tprobe.untrack(100 + w, fake)\n"
                "            junk = [str(i) * 3 for i in range(rng.randrange(30))]\n"
                "        for k, a in mine:\n"
                "            _tprobe.free(k, a)\n"
                "        for j in range(KEEP):\n"
                "            kind = KINDS[j % 4]\n"
                "            held[w].append((kind, _tprobe.alloc(kind, special(w, j)), special(w, j)))\n"
                "        settled[w].set()\n"
                "        finish.wait()\n"
                "        for k, a, _ in held[w]:\n"
                "            _tprobe.free(k, a)\n"
                "    except BaseException as e:\n"
                "        errors.append(repr(e))\n"
                "        settled[w].set()\n"
                "churns = [0]\n"
                "def churner(c):\n"
                "    try:\n"
                "        rng = random.Random(100 + c)\n"
                "        while time.monotonic() < deadline:\n"
                "            op = rng.random()\n"
                "            if op < 0.3:\n"
                "                _tprobe.stop()\n"
                "                _tprobe.start(rng.choice((1, 3, 30, 200)), rng.choice((0, 0, 4096)))\n"
                "            elif op < 0.4:\n"
                "                _tprobe.clear()\n"
                "            else:\n"
                "                n, total, weights, weighted = _tprobe.summary()\n"
                "            churns[0] += 1\n"
                "            time.sleep(rng.random() * 0.01)\n"
                "    except BaseException as e:\n"
                "        errors.append(repr(e))\n"
                "workers = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]\n"
                "churners = [threading.Thread(target=churner, args=(c,)) for c in range(2)]\n"
                "for t in workers + churners: t.start()\n"
                "for t in churners: t.join()\n"
                "# the churn is over: trace from a known state, then let the workers settle\n"
                "_tprobe.stop()\n"
                "assert _tprobe.start(8) == 0\n"
                "settle.set()\n"
                "for e in settled: e.wait()\n"
                "assert not errors, errors\n"
                "assert churns[0] > 10, churns\n"
                "n, total, count, current = _tprobe.consistency()\n"
                "assert n == count and total == current, (n, count, total, current)\n"
                "want = {(a, s) for w in range(WORKERS) for _, a, s in held[w]}\n"
                "lo, hi = special(0, 0), special(WORKERS, 0)\n"
                "got = {(a, s) for a, s, d in _tprobe.traces() if d == 0 and lo <= s < hi}\n"
                "assert len(want) == WORKERS * KEEP\n"
                "assert got == want, (len(got), len(want), sorted(got ^ want)[:5])\n"
                "finish.set()\n"
                "for t in workers: t.join()\n"
                "assert not errors, errors\n"
                "got = [s for a, s, d in _tprobe.traces() if d == 0 and lo <= s < hi]\n"
                "assert got == [], got\n"
                "n, total, count, current = _tprobe.consistency()\n"
                "assert n == count and total == current, (n, count, total, current)\n"
                "_tprobe.stop()\n"),
            0);
  return 0;
}

TEST(tracer_threads_stress) { return run_stress(0, 10.0); }

TEST(tracer_threads_stress_with_every_update_queued) { return run_stress(1, 5.0); }
