// Push to talk: passes the microphone's samples from the audio thread to the live page, block
// by block, while the talk button is held.
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor('keyhole-capture', Capture);
