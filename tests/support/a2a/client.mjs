// The official A2A JavaScript SDK as a client of a clawlinkd endpoint: discover the card,
// send a message, read the task back. Prints one JSON object per step on stdout.
//
// Usage: A2A_SDK_DIR=... node client.mjs ORIGIN TOKEN TEXT
// The SDK is found through $A2A_SDK_DIR (scripts/a2a-env.sh installs it there).
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';

const sdk = createRequire(`${process.env.A2A_SDK_DIR}/`);
const { ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory } = sdk('@a2a-js/sdk/client');
const { AgentCard, Role, Task, Message } = sdk('@a2a-js/sdk');

const [origin, token, text] = process.argv.slice(2);
const fetchImpl = (url, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(url, { ...init, headers });
};
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const card = await new DefaultAgentCardResolver({ fetchImpl }).resolve(origin);
print({ step: 'card', card: AgentCard.toJSON(card) });
const factory = new ClientFactory(
  ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory({ fetchImpl })],
  }),
);
const client = await factory.createFromAgentCard(card);
const messageId = randomUUID();
const sent = await client.sendMessage({
  message: {
    messageId,
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text', value: text } }],
  },
  configuration: { returnImmediately: true },
});
const isTask = sent && 'status' in sent;
print({ step: 'sent', messageId, task: isTask ? Task.toJSON(sent) : null, message: isTask ? null : Message.toJSON(sent) });
if (isTask) {
  const got = await client.getTask({ id: sent.id });
  print({ step: 'got', task: Task.toJSON(got) });
}
