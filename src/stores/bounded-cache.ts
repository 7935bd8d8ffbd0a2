import { LRUCache } from 'lru-cache';

/**
 * An LRU cache of at most `entries` entries that takes memory as it fills. lru-cache's `max`
 * allocates its index arrays for every entry up front (about 156 KB for 10,000), and the gateway
 * keeps nine such caches that mostly stay near empty: counting each entry as size 1 under
 * `maxSize` gives the same bound without the reservation (2.8 MB of base RSS).
 */
export function boundedCache<K extends NonNullable<unknown>, V extends NonNullable<unknown>>(entries: number, options: Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'sizeCalculation'> = {}): LRUCache<K, V> {
  return new LRUCache<K, V>({ ...options, maxSize: entries, sizeCalculation: () => 1 } as LRUCache.Options<K, V, unknown>);
}
