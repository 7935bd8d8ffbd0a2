import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { AlertsConfig } from '../../config/schema.js';
import type { RaiseAlert } from './rules.js';

/** Sampling resolution of the event-loop delay histogram (ms). */
const LAG_RESOLUTION_MS = 20;

export interface ResourceSample {
  lagP99Ms: number;
  lagMaxMs: number;
  rssBytes: number;
  heapRatio: number;
}

/** Reads the process's resource use; replaced in tests to feed chosen values to the checks. */
export type ResourceProbe = () => ResourceSample;

export function processProbe(): { probe: ResourceProbe; stop(): void } {
  const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  lag.enable();
  return {
    probe() {
      const sample = {
        lagP99Ms: lag.percentile(99) / 1e6,
        lagMaxMs: lag.max / 1e6,
        rssBytes: process.memoryUsage.rss(),
        heapRatio: (() => {
          const h = getHeapStatistics();
          return h.used_heap_size / h.heap_size_limit;
        })(),
      };
      lag.reset();
      return sample;
    },
    stop: () => lag.disable(),
  };
}

/** Checks one sample against the thresholds; alerts on anomalous resource use. */
export function checkResources(s: ResourceSample, cfg: AlertsConfig['resources'], raise: RaiseAlert): void {
  if (s.lagP99Ms > cfg.eventLoopLag) {
    raise('event_loop_lag', 'process', `event-loop lag p99 ${s.lagP99Ms.toFixed(0)} ms over ${cfg.eventLoopLag} ms`, { lagP99Ms: Math.round(s.lagP99Ms), lagMaxMs: Math.round(s.lagMaxMs), thresholdMs: cfg.eventLoopLag });
  }
  if (s.rssBytes > cfg.maxRss) {
    raise('memory_high', 'rss', `resident memory ${Math.round(s.rssBytes / 1048576)} MiB over ${Math.round(cfg.maxRss / 1048576)} MiB`, { rssBytes: s.rssBytes, thresholdBytes: cfg.maxRss });
  }
  if (s.heapRatio > cfg.maxHeapRatio) {
    raise('memory_high', 'heap', `heap ${(s.heapRatio * 100).toFixed(0)}% of its limit`, { heapRatio: Number(s.heapRatio.toFixed(3)), threshold: cfg.maxHeapRatio });
  }
}

/** Samples every `interval` (unref'd timer) and checks each sample. */
export function startResourceMonitor(cfg: AlertsConfig['resources'], raise: RaiseAlert, probe?: ResourceProbe): { stop(): void } {
  const own = probe ? undefined : processProbe();
  const read = probe ?? (own as { probe: ResourceProbe }).probe;
  const timer = setInterval(() => checkResources(read(), cfg, raise), cfg.interval);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      own?.stop();
    },
  };
}
