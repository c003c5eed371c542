// Sends one call of each type through the official Node SDKs (Segment analytics-node, RudderStack
// rudder-sdk-node) to the collector given as argv[2]. Run by test_node_sdks.py.
const { Analytics } = require('@segment/analytics-node');
const RudderAnalytics = require('@rudderstack/rudder-sdk-node');
const host = process.argv[2];
(async () => {
  const seg = new Analytics({ writeKey: 'web-dev-key', host, flushAt: 3 });
  seg.on('error', (e) => { console.error('segment error', e); process.exitCode = 1; });
  seg.track({ userId: 'n1', event: 'Node Track', properties: { a: 1 }, messageId: 'node-seg-track' });
  seg.identify({ userId: 'n1', traits: { plan: 'pro' }, messageId: 'node-seg-identify' });
  seg.page({ anonymousId: 'anon-n', name: 'Home', messageId: 'node-seg-page' });
  seg.screen({ userId: 'n1', name: 'Cart', messageId: 'node-seg-screen' });
  seg.group({ userId: 'n1', groupId: 'g1', messageId: 'node-seg-group' });
  seg.alias({ userId: 'n1', previousId: 'anon-n', messageId: 'node-seg-alias' });
  await seg.closeAndFlush();
  const rud = new RudderAnalytics('ios-dev-key', { dataPlaneUrl: host, flushAt: 2, logLevel: 'error' });
  await new Promise((resolve) => {
    rud.track({ userId: 'r1', event: 'Rudder Node Track', messageId: 'node-rud-track' });
    rud.identify({ userId: 'r1', traits: { x: 1 }, messageId: 'node-rud-identify' });
    rud.alias({ userId: 'r1', previousId: 'a1', messageId: 'node-rud-alias' });
    rud.group({ userId: 'r1', groupId: 'g2', messageId: 'node-rud-group' });
    rud.flush((err) => { if (err) { console.error('rudder error', err); process.exitCode = 1; } resolve(); });
  });
  console.log('sent');
})();
