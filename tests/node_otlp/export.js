// The OpenTelemetry JS SDK as a Node app uses it: a tracer provider, a batch span processor
// and an OTLP exporter, configured by the standard environment variables alone
// (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _CERTIFICATE, _PROTOCOL, _TIMEOUT), so
// tests/integration/test_node_sdk_export.py can show spanmeter's receiver working with it.
//
//   node export.js COUNT [TENANT] [ENDPOINT_TAG]
//
// The exporter is chosen by OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL
// (grpc, http/protobuf, http/json; http/protobuf when unset, as in the SDK). It emits COUNT
// GenAI chat spans, flushes and shuts down, then prints one JSON line on stdout: the spans it
// sent (model and tokens, to recompute their cost), the result of every export call and the
// errors the flush and shutdown rejected with. The
// exit status is 0 when every export succeeded, 2 otherwise. The SDK's own log (diag, INFO)
// goes to stderr, where it says whether a failed export was retried.
'use strict';

const { diag, DiagLogLevel } = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');

const MODELS = [
  ['openai', 'gpt-4o'],
  ['openai', 'gpt-4o-mini'],
];

function protocol() {
  return (
    process.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ||
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL ||
    'http/protobuf'
  ).trim();
}

function newExporter(name) {
  // No options: every setting comes from the environment, as in an app.
  switch (name) {
    case 'grpc':
      return new (require('@opentelemetry/exporter-trace-otlp-grpc').OTLPTraceExporter)();
    case 'http/protobuf':
      return new (require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter)();
    case 'http/json':
      return new (require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter)();
    default:
      throw new Error(`unknown OTLP protocol ${JSON.stringify(name)}`);
  }
}

// Wraps the exporter to record what each export call reported; the batch processor above it
// is the SDK's own, so retries and drops are the SDK's behaviour, not this script's.
class RecordingExporter {
  constructor(inner) {
    this.inner = inner;
    this.results = [];
  }

  export(spans, done) {
    this.inner.export(spans, (result) => {
      const error = result.error;
      this.results.push({
        code: result.code, // ExportResultCode: 0 SUCCESS, 1 FAILED
        spans: spans.length,
        error: error ? String(error.message) : null,
        error_code: error && error.code !== undefined ? error.code : null,
      });
      done(result);
    });
  }

  forceFlush() {
    return this.inner.forceFlush ? this.inner.forceFlush() : Promise.resolve();
  }

  shutdown() {
    return this.inner.shutdown();
  }
}

function stderrLogger() {
  const write = (level) => (message, ...args) => {
    const extra = args.map((arg) => (arg instanceof Error ? arg.message : String(arg)));
    process.stderr.write(`otel ${level}: ${[message, ...extra].join(' ')}\n`);
  };
  return {
    error: write('error'),
    warn: write('warn'),
    info: write('info'),
    debug: write('debug'),
    verbose: write('verbose'),
  };
}

async function main() {
  const count = Number.parseInt(process.argv[2] || '5', 10);
  const tenant = process.argv[3] || 'acme';
  const endpointTag = process.argv[4] || 'checkout.node_summary';
  if (!Number.isInteger(count) || count < 1) {
    throw new Error('usage: node export.js COUNT [TENANT] [ENDPOINT_TAG]');
  }
  diag.setLogger(stderrLogger(), DiagLogLevel.INFO);

  const exporter = new RecordingExporter(newExporter(protocol()));
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'node-checkout' }),
    spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 512 })],
  });
  const tracer = provider.getTracer('spanmeter-node-check');

  const sent = [];
  for (let i = 0; i < count; i += 1) {
    const [provider_name, model] = MODELS[i % MODELS.length];
    const call = {
      provider: provider_name,
      model,
      input_tokens: 100 + 37 * i,
      output_tokens: 10 + 3 * i,
      endpoint_tag: endpointTag,
      tenant,
    };
    const span = tracer.startSpan(`chat ${model}`, {
      kind: 2, // CLIENT
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': call.provider,
        'gen_ai.request.model': call.model,
        'gen_ai.response.model': call.model,
        'gen_ai.usage.input_tokens': call.input_tokens,
        'gen_ai.usage.output_tokens': call.output_tokens,
        'spanmeter.endpoint_tag': call.endpoint_tag,
        'spanmeter.tenant_id': call.tenant,
      },
    });
    span.end();
    sent.push(call);
  }

  // A failed export rejects the flush (as it would in an app that awaits it): record why.
  const flushErrors = [];
  for (const step of [() => provider.forceFlush(), () => provider.shutdown()]) {
    try {
      await step();
    } catch (error) {
      flushErrors.push(String(error && error.message ? error.message : error));
    }
  }
  const ok = exporter.results.length > 0 && exporter.results.every((r) => r.code === 0);
  const report = { protocol: protocol(), sent, results: exporter.results, flush_errors: flushErrors };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exitCode = ok ? 0 : 2;
}

main().catch((error) => {
  process.stderr.write(`export.js: ${error && error.stack ? error.stack : error}\n`);
  process.exitCode = 1;
});
