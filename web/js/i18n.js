// i18n.js: the UI's words in English and Simplified Chinese. The language is
// the user's choice (the switch in the header, kept in localStorage), else the
// browser's (zh-* gives Chinese), else English. t(english) is the word in the
// current language; a word without a translation stays English. Static text of
// index.html carries data-i18n (its textContent), data-i18n-placeholder or
// data-i18n-label (aria-label), translated by translatePage(). Server data
// (titles, messages, errors the server words) is never translated.

const ZH = {
  'mjs studio': 'mjs 工作室',
  Chat: '对话',
  Tasks: '任务',
  'Log out': '退出登录',
  Username: '用户名',
  Password: '密码',
  'Log in': '登录',
  Register: '注册',
  '+ New chat': '＋ 新对话',
  'No conversations yet.': '还没有对话。',
  Settings: '设置',
  'System prompt': '系统提示词',
  'Instructions sent with every reply of this conversation': '每次回复都会随附的指令',
  Model: '模型',
  "the server's default": '服务器默认',
  Save: '保存',
  Cancel: '取消',
  'Choose a conversation or start a new one.': '选择一个对话，或新建一个。',
  'Message…': '输入消息…',
  Send: '发送',
  'server default': '服务器默认',
  '(default)': '（默认）',
  '(this chat)': '（本对话）',
  Image: '图片',
  Video: '视频',
  Create: '创建',
  Trash: '回收站',
  'Nothing here.': '这里什么也没有。',
  'Load more': '加载更多',
  'The trash is empty.': '回收站是空的。',
  'No tasks yet.': '还没有任务。',
  'Describe the image or video…': '描述图片或视频…',
  You: '你',
  AI: 'AI',
  'writing…': '生成中…',
  interrupted: '已中断',
  failed: '失败',
  'cut off': '已截断',
  'the reply reached a length limit': '回复达到了长度上限',
  'Thinking…': '思考中…',
  Thoughts: '思考过程',
  '■ Stop': '■ 停止',
  Edit: '编辑',
  Delete: '删除',
  Rename: '重命名',
  Restore: '恢复',
  Blur: '模糊',
  Unblur: '取消模糊',
  '▶ Open video': '▶ 打开视频',
  queued: '排队中',
  'waiting for the first token': '等待第一个字',
  'the reply failed': '回复失败',
  submitting: '提交中',
  processing: '处理中',
  succeeded: '已完成',
  image: '图片',
  video: '视频',
  live: '已连接',
  'reconnecting…': '重新连接中…',
  connecting: '连接中',
  offline: '离线',
  'Language': '语言',
  Copy: '复制',
  Copied: '已复制',
  'Could not send': '发送失败',
  'This conversation was deleted in another tab or device.': '这个对话已在其他标签页或设备上删除。',
  'Your session has ended; log in again.': '会话已结束，请重新登录。',
  'Enter a username and a password.': '请输入用户名和密码。',
};

const DICTS = { en: {}, zh: ZH };
let lang = pick();

function pick() {
  const saved = localStorage.getItem('mjs.lang');
  if (saved && DICTS[saved]) return saved;
  return (navigator.languages || [navigator.language || 'en']).some((l) => /^zh\b/i.test(l)) ? 'zh' : 'en';
}

export function t(english) {
  return DICTS[lang][english] ?? english;
}

export function language() {
  return lang;
}

export function setLanguage(l) {
  if (!DICTS[l]) return;
  lang = l;
  localStorage.setItem('mjs.lang', l);
  translatePage();
}

// The static text of the page, from the English kept in its data-i18n* attributes.
export function translatePage() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll('[data-i18n-placeholder]')) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of document.querySelectorAll('[data-i18n-label]')) node.setAttribute('aria-label', t(node.dataset.i18nLabel));
  document.title = t('mjs studio');
}
