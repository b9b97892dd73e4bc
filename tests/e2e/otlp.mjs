// OTLP/HTTP trace bodies as a receiver gets them, decoded with a real
// protobuf implementation (protobufjs) from the OTLP message definitions
// below, written from opentelemetry-proto (collector/trace/v1, trace/v1,
// common/v1, resource/v1; only what a trace export carries). Both encodings
// come back in the shape of the OTLP/JSON mapping (ids as lowercase hex,
// 64-bit integers as decimal strings, enums as numbers), so a test checks a
// span the same way whichever way the gateway sent it.

import protobuf from 'protobufjs';

const PROTO = `
syntax = "proto3";
package opentelemetry.proto;

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope {
  string name = 1;
  string version = 2;
  repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
message Resource {
  repeated KeyValue attributes = 1;
  uint32 dropped_attributes_count = 2;
}
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
message ExportTracePartialSuccess { int64 rejected_spans = 1; string error_message = 2; }
message ResourceSpans {
  Resource resource = 1;
  repeated ScopeSpans scope_spans = 2;
  string schema_url = 3;
}
message ScopeSpans {
  InstrumentationScope scope = 1;
  repeated Span spans = 2;
  string schema_url = 3;
}
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  fixed32 flags = 16;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  message Event {
    fixed64 time_unix_nano = 1;
    string name = 2;
    repeated KeyValue attributes = 3;
    uint32 dropped_attributes_count = 4;
  }
  repeated Event events = 11;
  uint32 dropped_events_count = 12;
  message Link {
    bytes trace_id = 1;
    bytes span_id = 2;
    string trace_state = 3;
    repeated KeyValue attributes = 4;
    uint32 dropped_attributes_count = 5;
    fixed32 flags = 6;
  }
  repeated Link links = 13;
  uint32 dropped_links_count = 14;
  Status status = 15;
}
message Status {
  reserved 1;
  string message = 2;
  int32 code = 3;
}
`;

const root = protobuf.parse(PROTO).root;
const Request = root.lookupType('opentelemetry.proto.ExportTraceServiceRequest');
export const Response = root.lookupType('opentelemetry.proto.ExportTraceServiceResponse');

const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);

// protobufjs's object (bytes as Buffers) in the OTLP/JSON mapping's shape.
function jsonShape(v, key) {
    if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
        const b = Buffer.from(v);
        return ID_FIELDS.has(key) ? b.toString('hex') : b.toString('base64');
    }
    if (Array.isArray(v)) return v.map(x => jsonShape(x));
    if (v && typeof v === 'object') {
        const o = {};
        for (const [k, x] of Object.entries(v)) {
            // (an empty parent id means a root span: the JSON leaves it out)
            if (ID_FIELDS.has(k) && x.length === 0) continue;
            o[k] = jsonShape(x, k);
        }
        return o;
    }
    return v;
}

/* A POST /v1/traces body: { resourceSpans: [...] }. Throws on a body that
 * is not the content type's encoding of an ExportTraceServiceRequest. */
export function decodeTraces(body, contentType) {
    const type = String(contentType ?? '').split(';')[0].trim();
    if (type === 'application/json') return JSON.parse(body.toString('utf8'));
    if (type !== 'application/x-protobuf') throw new Error(`unexpected content type ${contentType}`);
    const msg = Request.decode(body);
    const problem = Request.verify(msg);
    if (problem) throw new Error(`not an ExportTraceServiceRequest: ${problem}`);
    return jsonShape(Request.toObject(msg, { longs: String, enums: Number, bytes: Buffer, defaults: false, oneofs: false }));
}

/* A binary ExportTraceServiceResponse with a partial success. */
export function partialSuccess(rejectedSpans, errorMessage) {
    return Buffer.from(Response.encode(Response.create({ partialSuccess: { rejectedSpans, errorMessage } })).finish());
}

// The status code of a span: 0 (UNSET) when it has no status.
export const statusCode = span => span.status?.code ?? 0;
