// The official A2A JavaScript SDK as a server (Express + DefaultRequestHandler) that clawlink
// sends to. Its agent answers every message with "echo: TEXT [context CONTEXT_ID]" after a
// delay, or rejects it. Every received message is logged to stderr as one JSON line
// {"received": {messageId, contextId, text}}, so tests can check what arrived, and how often.
//
// Usage: A2A_SDK_DIR=... node server.mjs PORT TOKEN [DELAY_MS] [answer|reject]
//        TOKEN "-" accepts calls without a token.
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';

const sdk = createRequire(`${process.env.A2A_SDK_DIR}/`);
const express = sdk('express');
const { DefaultRequestHandler, InMemoryTaskStore, AgentEvent } = sdk('@a2a-js/sdk/server');
const { jsonRpcHandler, agentCardHandler, UserBuilder } = sdk('@a2a-js/sdk/server/express');
const { TaskState, Role } = sdk('@a2a-js/sdk');

const [port, token, delayArg, mode] = process.argv.slice(2);
const delayMs = Number(delayArg ?? 200);
const now = () => new Date().toISOString();
const textPart = (value) => ({ content: { $case: 'text', value }, metadata: undefined });

const card = {
  name: 'Hermes (A2A JS SDK)',
  description: 'Echoes what it is told.',
  supportedInterfaces: [
    { url: `http://127.0.0.1:${port}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0', tenant: '' },
  ],
  version: '1.0.0',
  capabilities: { streaming: false, pushNotifications: false, extensions: [] },
  defaultInputModes: ['text/plain'],
  defaultOutputModes: ['text/plain'],
  skills: [{ id: 'echo', name: 'echo', description: 'Repeats the message.', tags: ['test'], examples: [], inputModes: [], outputModes: [], securityRequirements: [] }],
  securitySchemes: {},
  securityRequirements: [],
  signatures: [],
};

const executor = {
  async execute(ctx, bus) {
    const text = ctx.userMessage.parts.map((p) => (p.content?.$case === 'text' ? p.content.value : '')).join('');
    process.stderr.write(JSON.stringify({ received: { messageId: ctx.userMessage.messageId, contextId: ctx.contextId, text } }) + '\n');
    const ids = { taskId: ctx.taskId, contextId: ctx.contextId, metadata: undefined };
    bus.publish(AgentEvent.task({
      id: ctx.taskId, contextId: ctx.contextId, history: [ctx.userMessage], artifacts: [], metadata: undefined,
      status: { state: TaskState.TASK_STATE_WORKING, message: undefined, timestamp: now() },
    }));
    await new Promise((r) => setTimeout(r, delayMs));
    if (mode === 'reject') {
      const message = { messageId: randomUUID(), contextId: ctx.contextId, taskId: ctx.taskId, role: Role.ROLE_AGENT, parts: [textPart('I do not take such tasks')], metadata: undefined, extensions: [], referenceTaskIds: [] };
      bus.publish(AgentEvent.statusUpdate({ ...ids, status: { state: TaskState.TASK_STATE_REJECTED, message, timestamp: now() } }));
    } else {
      bus.publish(AgentEvent.artifactUpdate({
        ...ids, append: false, lastChunk: true,
        artifact: { artifactId: randomUUID(), name: 'answer', description: '', parts: [textPart(`echo: ${text} [context ${ctx.contextId}]`)], metadata: undefined, extensions: [] },
      }));
      bus.publish(AgentEvent.statusUpdate({ ...ids, status: { state: TaskState.TASK_STATE_COMPLETED, message: undefined, timestamp: now() } }));
    }
    bus.finished();
  },
  async cancelTask() {},
};

const handler = new DefaultRequestHandler(card, new InMemoryTaskStore(), executor);
const app = express();
app.use('/.well-known/agent-card.json', agentCardHandler({ agentCardProvider: handler }));
app.use('/a2a/jsonrpc', (req, res, next) => {
  if (token !== '-' && req.headers.authorization !== `Bearer ${token}`) {
    res.status(401).json({ error: 'unauthorized' });
    return;
  }
  next();
});
app.use('/a2a/jsonrpc', jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
app.listen(Number(port), '127.0.0.1', () => process.stderr.write(`listening ${port}\n`));
