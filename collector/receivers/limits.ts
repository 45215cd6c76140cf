/** OTLP's recommended request limit, applied to the body as sent and again after decompression. */
export const MAX_BODY_BYTES = 20 * 1024 * 1024;
