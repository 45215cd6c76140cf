/**
 * Resource and InstrumentationScope → the ResourceInfo / ScopeInfo every
 * span or data point of the enclosing message shares (one object, by reference).
 */
import type { Attribute, ResourceInfo, ScopeInfo } from '../model.js';
import { attributesFromJson, dedupeAttributes, pushKeyValue } from './attributes.js';
import { asObject, member, optString, optUint32 } from './json-values.js';
import { rethrowWithin } from './malformed.js';
import { ProtoReader, WIRE_LEN, WIRE_VARINT } from './wire.js';

export const UNKNOWN_SERVICE = 'unknown_service';
const SERVICE_NAME_KEY = 'service.name';

/** `service.name`, or `unknown_service` when absent or empty. */
export function serviceNameOf(attributes: readonly Attribute[]): string {
  for (const a of attributes) {
    if (a.key === SERVICE_NAME_KEY) return a.value === '' ? UNKNOWN_SERVICE : a.value;
  }
  return UNKNOWN_SERVICE;
}

/**
 * A ResourceInfo with nothing known yet. The protobuf decoders create it when
 * a ResourceSpans starts and fill it when its `resource` field arrives, which
 * may be after the spans (protobuf does not order fields): the spans already
 * hold the same object.
 */
export function emptyResourceInfo(): ResourceInfo {
  return { serviceName: UNKNOWN_SERVICE, attributes: [], schemaUrl: '' };
}

export function emptyScopeInfo(): ScopeInfo {
  return { name: '', version: '', attributes: [], droppedAttributesCount: 0, schemaUrl: '' };
}

/** Resource { attributes 1, dropped_attributes_count 2 } in [r.pos, end), merged into `info`. */
export function decodeResourceProto(r: ProtoReader, end: number, info: ResourceInfo): void {
  while (r.pos < end) {
    const field = r.tag(end);
    if (field === 1) pushKeyValue(r, end, info.attributes, 'attributes');
    else r.skip(end);
  }
  info.attributes = dedupeAttributes(info.attributes);
  info.serviceName = serviceNameOf(info.attributes);
}

// attributes (3) is '': pushKeyValue names the element itself.
const SCOPE_FIELDS: readonly string[] = ['', 'name', 'version', '', 'dropped_attributes_count'];

/** InstrumentationScope { name 1, version 2, attributes 3, dropped_attributes_count 4 } into `info`. */
export function decodeScopeProto(r: ProtoReader, end: number, info: ScopeInfo): void {
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      switch (field) {
        case 1:
          r.expect(WIRE_LEN);
          info.name = r.string(end);
          break;
        case 2:
          r.expect(WIRE_LEN);
          info.version = r.string(end);
          break;
        case 3:
          pushKeyValue(r, end, info.attributes, 'attributes');
          break;
        case 4:
          r.expect(WIRE_VARINT);
          info.droppedAttributesCount = r.uint32(end);
          break;
        default:
          r.skip(end);
      }
    }
  } catch (err) {
    rethrowWithin(err, SCOPE_FIELDS[field] ?? '');
  }
  info.attributes = dedupeAttributes(info.attributes);
}

/** OTLP/JSON `resource` (absent: no attributes). */
export function resourceFromJson(value: unknown, schemaUrl: string): ResourceInfo {
  if (value === undefined) return { serviceName: UNKNOWN_SERVICE, attributes: [], schemaUrl };
  const o = asObject(value, '');
  const attributes = attributesFromJson(member(o, 'attributes'), 'attributes');
  return { serviceName: serviceNameOf(attributes), attributes, schemaUrl };
}

/** OTLP/JSON `scope` (absent: empty name and version). */
export function scopeFromJson(value: unknown, schemaUrl: string): ScopeInfo {
  if (value === undefined) return { name: '', version: '', attributes: [], droppedAttributesCount: 0, schemaUrl };
  const o = asObject(value, '');
  return {
    name: optString(member(o, 'name'), 'name'),
    version: optString(member(o, 'version'), 'version'),
    attributes: attributesFromJson(member(o, 'attributes'), 'attributes'),
    droppedAttributesCount: optUint32(member(o, 'droppedAttributesCount', 'dropped_attributes_count'), 'dropped_attributes_count'),
    schemaUrl,
  };
}
