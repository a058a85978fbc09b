// A Web Push service (RFC 8030) for the push test: web-push-testing's emulator, which checks
// each push's VAPID token (RFC 8292) and decrypts its payload (RFC 8291) with the keys of the
// subscription it made, listening on a loopback port the system picks. Prints the port, then
// serves until its standard input closes.
const TestingServer = require('web-push-testing/src/server.js');
const { PushApiModel } = require('web-push-testing/src/PushApiModel.js');

const model = new PushApiModel();
const service = new TestingServer(model, 0);
service.setRequestHandlers();
const listener = service._app.listen(0, '127.0.0.1', () => {
  const { port } = listener.address();
  model.notifyUrl = `http://127.0.0.1:${port}/notify/`;
  console.log(`listening on ${port}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
