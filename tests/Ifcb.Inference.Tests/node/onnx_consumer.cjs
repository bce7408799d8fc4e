// Runs an ONNX model the way an outside IFCB tool does, with ONNX Runtime for Node.js (npm onnxruntime-node, CPU):
//   node onnx_consumer.cjs MODEL.onnx INPUT.f32 N SIZE OUT.json
// INPUT.f32 holds N images as little-endian float32, [N, 3, SIZE, SIZE], RGB in [0,1]. The input's name is read from
// the model, as amplify_onnx_inference does. Writes the model's declared inputs/outputs and its probabilities.
const ort = require('onnxruntime-node');
const fs = require('node:fs');

async function main() {
  const [model, inputFile, count, size, outFile] = process.argv.slice(2);
  const bytes = fs.readFileSync(inputFile);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const session = await ort.InferenceSession.create(model);
  const shape = [Number(count), 3, Number(size), Number(size)];
  const results = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) });
  const probabilities = results.probabilities;
  fs.writeFileSync(outFile, JSON.stringify({
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    dims: probabilities.dims,
    probabilities: Array.from(probabilities.data),
  }));
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
