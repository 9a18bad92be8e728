// Ask the ponder router through its OpenAI-compatible HTTP API from Node, with nothing but fetch
// (Node >= 18). The official `openai` npm package works the same way: set baseURL only.
//
//   node ask_openai.mjs "The capital of France is"        # PONDER_HTTP_URL=http://127.0.0.1:8080/v1
const base = process.env.PONDER_HTTP_URL || 'http://127.0.0.1:8080/v1';
const res = await fetch(`${base}/chat/completions`, {
  method: 'POST',
  headers: {
    'content-type': 'application/json',
    authorization: `Bearer ${process.env.PONDER_API_KEY || 'unused-locally'}`,
  },
  body: JSON.stringify({
    model: 'ponder/auto',
    messages: [{ role: 'user', content: process.argv[2] || 'The capital of France is' }],
    max_tokens: 16,
    ponder: { budget: { max_compute_units: 500 } },
  }),
});
const body = await res.json();
if (!res.ok) {
  console.error(`error: ${res.status}: ${body.error.message}`);
  process.exit(2);
}
console.log(JSON.stringify({
  text: body.choices[0].message.content,
  pool: res.headers.get('x-ponder-pool'),
  plan: body.ponder.plan,
  usage: body.usage,
}));
