/**
 * The demo's "database": ratings and stock derived from the product id, so
 * every run (and every test) sees the same figures without shared state.
 */

/** Span attributes the apps add to their spans (names of the demo's own, not OTel conventions). */
export const ATTR_PRODUCT_ID = 'demo.product_id';
export const ATTR_STOCK_UNITS = 'demo.stock_units';

/** Product ids the apps accept: short, URL- and line-protocol-safe. */
export const PRODUCT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function isProductId(text: string): boolean {
  return PRODUCT_ID_PATTERN.test(text);
}

/** FNV-1a, 32-bit: a stable spread of ids over the figures below. */
function hashId(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

export interface RatingFigures {
  /** 1.0 to 5.0, one decimal. */
  stars: number;
  /** How many reviews the average is over. */
  count: number;
}

export function ratingFor(productId: string): RatingFigures {
  const hash = hashId(productId);
  return { stars: (10 + (hash % 41)) / 10, count: 1 + ((hash >>> 8) % 500) };
}

/** Units in stock, 0 to 99. */
export function stockFor(productId: string): number {
  return hashId(`stock:${productId}`) % 100;
}
