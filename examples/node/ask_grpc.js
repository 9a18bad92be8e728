// Ask the ponder router over gRPC from Node. The stubs are generated at load time from
// protos/ponder/v1/router.proto by @grpc/proto-loader (no generated code to keep in sync).
//
//   cd examples/node && npm install
//   node ask_grpc.js "The capital of France is"          # PONDER_ADDRESS=host:port, PONDER_API_KEY=...
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTOS = path.resolve(__dirname, '..', '..', 'protos');
const def = protoLoader.loadSync(path.join(PROTOS, 'ponder/v1/router.proto'), {
  includeDirs: [PROTOS], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
});
const ponder = grpc.loadPackageDefinition(def).ponder.v1;

const address = process.env.PONDER_ADDRESS || '127.0.0.1:50051';
const router = new ponder.Router(address, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
if (process.env.PONDER_API_KEY) metadata.set('authorization', `Bearer ${process.env.PONDER_API_KEY}`);

const request = {
  prompt: process.argv[2] || 'The capital of France is',
  sampling: { max_tokens: 16 },
  budget: { max_compute_units: 500 },
};
router.Generate(request, metadata, { deadline: Date.now() + 30000 }, (err, resp) => {
  if (err) {
    console.error(`error: ${grpc.status[err.code]}: ${err.details}`);
    process.exit(2);
  }
  console.log(JSON.stringify({ text: resp.text, plan: resp.plan, usage: resp.usage }));
  router.close();
});
