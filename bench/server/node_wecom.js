// Node + @wecom/crypto (the official WeCom library) in a bare `http` server, one
// process per worker with `cluster`. The same job as the Python apps: check
// msg_signature, decrypt, check the CorpID, read the XML fields, answer
// "echo: <content>" encrypted; dedup is a Map by MsgId in each worker process.
// Settings come from the environment: BENCH_TOKEN, BENCH_AES_KEY, BENCH_CORP_ID,
// BENCH_PORT, BENCH_WORKERS; NODE_PATH points at the node_modules holding @wecom/crypto.
'use strict';

const cluster = require('cluster');
const http = require('http');
const crypto = require('crypto');
const wecom = require('@wecom/crypto');

const token = process.env.BENCH_TOKEN;
const aesKey = process.env.BENCH_AES_KEY;
const corpId = process.env.BENCH_CORP_ID;
const port = Number(process.env.BENCH_PORT);
const workers = Number(process.env.BENCH_WORKERS || 1);

// The official library ships no XML parser; a regex per field is what its examples do.
function field(xml, name) {
  const match = new RegExp(`<${name}>(?:<!\\[CDATA\\[([\\s\\S]*?)\\]\\]>|([^<]*))</${name}>`).exec(xml);
  return match ? (match[1] !== undefined ? match[1] : match[2]) : undefined;
}

function answer(res, status, body, type) {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function serve() {
  const answered = new Map(); // MsgId -> reply plaintext, this process only
  http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/healthz') return answer(res, 200, 'ok', 'text/plain');
    if (req.method !== 'POST' || url.pathname !== '/wecom') return answer(res, 404, 'not found', 'text/plain');
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const query = url.searchParams;
      const timestamp = query.get('timestamp') || '';
      const nonce = query.get('nonce') || '';
      const encrypted = field(Buffer.concat(chunks).toString(), 'Encrypt');
      if (!encrypted || wecom.getSignature(token, timestamp, nonce, encrypted) !== query.get('msg_signature')) {
        return answer(res, 403, 'forbidden', 'text/plain');
      }
      let opened;
      try {
        opened = wecom.decrypt(aesKey, encrypted);
      } catch (err) {
        return answer(res, 400, 'bad request', 'text/plain');
      }
      if (opened.id !== corpId) return answer(res, 403, 'forbidden', 'text/plain');
      const xml = opened.message;
      const msgId = field(xml, 'MsgId');
      let reply = answered.get(msgId);
      if (reply === undefined) {
        reply = `<xml><ToUserName><![CDATA[${field(xml, 'FromUserName')}]]></ToUserName>`
          + `<FromUserName><![CDATA[${field(xml, 'ToUserName')}]]></FromUserName>`
          + `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType><![CDATA[text]]></MsgType>`
          + `<Content><![CDATA[echo: ${field(xml, 'Content')}]]></Content></xml>`;
        answered.set(msgId, reply);
      }
      const replyTimestamp = String(Math.floor(Date.now() / 1000));
      const sealed = wecom.encrypt(aesKey, reply, corpId, crypto.randomBytes(16));
      const signature = wecom.getSignature(token, replyTimestamp, nonce, sealed);
      return answer(res, 200, `<xml><Encrypt><![CDATA[${sealed}]]></Encrypt>`
        + `<MsgSignature><![CDATA[${signature}]]></MsgSignature>`
        + `<TimeStamp>${replyTimestamp}</TimeStamp><Nonce><![CDATA[${nonce}]]></Nonce></xml>`, 'application/xml');
    });
  }).listen(port, '127.0.0.1');
}

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i += 1) cluster.fork();
} else {
  serve();
}
