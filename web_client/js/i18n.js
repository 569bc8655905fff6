// Every visible string, in zh-CN (the default: our users are Chinese hospitals) and English.
// Static markup names its string with data-i18n (text), data-i18n-placeholder or
// data-i18n-aria-label; scripts call t(key, {params}) and re-render on onLangChange.

const STORAGE_KEY = 'teleconsult.lang';
const DEFAULT_LANG = 'zh-CN';

/** The choices in the switch, each named in its own language. */
export const LANGUAGES = { 'zh-CN': '中文', en: 'English' };

const SPECIALTY = {
  'zh-CN': {
    obstetrics: '产科', paediatrics: '儿科', child_growth: '儿童生长发育',
    reproductive_medicine: '生殖医学', ultrasound: '超声', ophthalmology: '眼科',
    imaging: '影像', cardiology: '心内科', neurology: '神经内科', general_medicine: '全科',
  },
  en: {
    obstetrics: 'Obstetrics', paediatrics: 'Paediatrics', child_growth: 'Child growth',
    reproductive_medicine: 'Reproductive medicine', ultrasound: 'Ultrasound',
    ophthalmology: 'Ophthalmology', imaging: 'Imaging', cardiology: 'Cardiology',
    neurology: 'Neurology', general_medicine: 'General medicine',
  },
};

const prefixed = (prefix, table) =>
  Object.fromEntries(Object.entries(table).map(([k, v]) => [`${prefix}.${k}`, v]));

const DICTIONARIES = {
  'zh-CN': {
    'app.name': '远程会诊',
    'lang.label': '语言',
    'nav.logout': '退出登录',
    'common.back': '返回',

    'login.pageTitle': '登录 · 远程会诊',
    'login.heading': '登录',
    'login.username': '用户名',
    'login.password': '密码',
    'login.submit': '登录',
    'login.session.expired': '登录已过期，请重新登录。',
    'login.session.invalid': '登录信息无效，请重新登录。',

    'examRoom.pageTitle': '诊室 · 远程会诊',
    'examRoom.listHeading': '本院会诊',
    'specialist.pageTitle': '专家 · 远程会诊',
    'specialist.incoming': '待接收的会诊申请',
    'specialist.noIncoming': '暂无新的申请',
    'specialist.mine': '我的会诊',
    'specialist.newRequest': '新的会诊申请：{patient}（{specialty}）',
    'supervisor.pageTitle': '质控 · 远程会诊',
    'supervisor.heading': '会诊记录',
    'supervisor.refresh': '刷新',

    'book.heading': '预约会诊',
    'book.patient': '患者信息',
    'book.patientName': '姓名',
    'book.sex': '性别',
    'book.age': '年龄（岁）',
    'book.summary': '病情摘要',
    'book.specialty': '会诊专科',
    'book.specialist': '指定专家（可选）',
    'book.anySpecialist': '任一值班专家',
    'book.reason': '会诊目的',
    'book.scheduledAt': '预约时间',
    'book.submit': '提交会诊申请',
    'book.done': '已提交 {patient} 的会诊申请。',
    'intake.title': '会诊资料',
    'intake.choose': '—',
    'intake.yes': '是',
    'intake.no': '否',
    'intake.problem.required': '必填',
    'intake.problem.unknown_field': '表单中没有此项',
    'intake.problem.not_a_number': '请输入数字',
    'intake.problem.not_an_integer': '请输入整数',
    'intake.problem.below_min': '不能小于 {min}{unit}',
    'intake.problem.above_max': '不能大于 {max}{unit}',
    'intake.problem.off_step': '请按 {step}{unit} 的间隔填写',
    'intake.problem.not_text': '请输入文字',
    'intake.problem.too_long': '最多 {max_length} 个字',
    'intake.problem.not_an_option': '请从选项中选择',
    'intake.problem.not_a_date': '请输入有效日期',
    'intake.problem.not_a_boolean': '请选择是或否',

    'sex.female': '女',
    'sex.male': '男',
    'sex.unknown': '未知',
    'patient.age': '{age} 岁',

    'status.requested': '待接收',
    'status.accepted': '已接收',
    'status.waiting': '等待入会',
    'status.live': '会诊中',
    'status.ended': '已结束',
    'status.declined': '已拒绝',
    'status.cancelled': '已取消',
    'status.expired': '已过期',

    'consults.empty': '暂无会诊',
    'consult.patient': '患者',
    'consult.specialty': '专科',
    'consult.reason': '会诊目的',
    'consult.summary': '病情摘要',
    'consult.scheduledAt': '预约时间',
    'consult.requester': '申请方',
    'consult.specialist': '会诊专家',
    'consult.anySpecialist': '待分配',
    'consult.closingNote': '备注',
    'consult.status': '状态',
    'consult.join': '进入会诊',
    'consult.cancel': '取消会诊',
    'consult.cancelConfirm': '确定取消 {patient} 的会诊吗？',
    'consult.accept': '接收',
    'consult.decline': '拒绝',
    'consult.declineReason': '拒绝原因',
    'consult.declineConfirm': '确认拒绝',

    'connection.lost': '与服务器的连接已断开，正在重新连接…',

    'call.titleLoading': '会诊',
    'call.title': '{patient} · {specialty}',
    'call.localVideo': '本地画面',
    'call.remoteVideo': '{name} 的画面',
    'call.mute': '静音',
    'call.unmute': '取消静音',
    'call.cameraOff': '关闭摄像头',
    'call.cameraOn': '打开摄像头',
    'call.enableSound': '开启声音',
    'call.leave': '暂时离开',
    'call.hangUp': '结束会诊',
    'call.back': '返回列表',
    'call.conclusion': '会诊意见与建议（可选）',
    'call.state.closed': '未在会诊中',
    'call.state.joining': '正在进入会诊…',
    'call.state.waiting': '等待对方进入…',
    'call.state.connecting': '正在建立视频连接…',
    'call.state.connected': '已连接',
    'call.state.reconnecting': '网络不稳定，正在重新连接…',
    'call.state.ended': '会诊已结束',
    'call.state.declined': '会诊已被拒绝',
    'call.state.cancelled': '会诊已取消',
    'call.state.expired': '会诊已过期',
    'call.finished.ended': '会诊已结束。',
    'call.finished.declined': '会诊已被拒绝。',
    'call.finished.cancelled': '会诊已取消。',
    'call.finished.expired': '会诊已过期。',
    'call.media.denied': '未获得摄像头或麦克风权限。您仍可观看和收听对方；如需发言，请在浏览器设置中允许访问后重新进入。',
    'call.media.missing': '未找到摄像头或麦克风。您仍可观看和收听对方。',
    'call.media.busy': '摄像头或麦克风正被其他程序占用。您仍可观看和收听对方。',
    'call.media.failed': '无法打开摄像头或麦克风。您仍可观看和收听对方。',
    'call.media.insecure': '此页面未通过 HTTPS 打开，浏览器不允许使用摄像头和麦克风。您仍可观看和收听对方。',
    'call.peer.joined': '{name} 已进入会诊。',
    'call.peer.left': '{name} 已离开会诊。',
    'call.peer.lost': '{name} 的网络已断开，等待其重新连接…',
    'call.joinFailed': '无法进入会诊：{reason}',
    'call.hangUpFailed': '无法结束会诊：{reason}',

    'notes.heading': '会诊笔记',
    'notes.label': '新笔记',
    'notes.placeholder': '记录所见、测量或建议（各方即时可见，提交后不可修改；Ctrl+Enter 提交）',
    'notes.add': '添加笔记',
    'notes.none': '暂无笔记。',
    'notes.offset': '录像 {time}',
    'notes.addFailed': '笔记未保存：{reason}',

    'record.open': '会诊记录（可打印）',
    'record.pageTitle': '会诊记录 · 远程会诊',
    'record.heading': '远程会诊记录',
    'record.print': '打印',
    'record.patient': '患者',
    'record.consult': '会诊信息',
    'record.intake': '病史与检查',
    'record.noIntake': '无',
    'record.participants': '参与人员',
    'record.requestingDoctor': '申请医生',
    'record.tookNotes': '记录笔记',
    'record.recorded': '被录制',
    'record.times': '时间',
    'record.requestedAt': '申请时间',
    'record.acceptedAt': '接收时间',
    'record.startedAt': '开始时间',
    'record.endedAt': '结束时间',
    'record.conclusion': '会诊意见与建议',
    'record.noConclusion': '未填写',
    'record.participant': '人员',
    'record.source': '来源',
    'record.starts': '起点',
    'record.duration': '时长',
    'record.size': '大小',
    'record.megabytes': '{n} MB',
    'record.sha256': 'SHA-256',
    'record.printedAt': '生成时间：{time}',
    'record.loadFailed': '无法加载会诊记录：{reason}',
    'record.partFailed': '无法加载：{reason}',
    'record.missing': '链接中没有会诊编号。',

    'call.path.p2p': '直连',
    'call.path.relay': '经服务器中转',
    'call.relay.failed': '服务器中转的音视频出现问题：{reason}',
    'call.relay.rejoining': '与服务器的音视频连接中断，正在重新进入会诊…',

    'second.share': '共享超声/屏幕',
    'second.stop': '停止共享',
    'second.choose': '选择要共享的画面：',
    'second.screen': '屏幕',
    'second.device': '视频设备 {n}',
    'second.cancel': '取消',
    'second.none': '没有可共享的画面：请连接超声采集卡，或使用支持屏幕共享的电脑浏览器。',
    'second.failed': '无法打开所选画面，请检查设备连接和浏览器权限。',
    'second.caption': '{name} · 超声/屏幕',
    'second.remoteVideo': '{name} 共享的超声/屏幕画面',
    'second.localVideo': '我共享的画面',

    'recording.on': '录制中',
    'recording.start': '开始录制',
    'recording.stop': '停止录制',
    'recording.awaiting': '正在等待各方同意录制（还有 {count} 人未答复）…',
    'recording.declinedBy': '{name} 不同意录制，本次会诊未录制。',
    'recording.stopped': '录制已停止。',
    'recording.started': '各方均已同意，正在录制。',
    'recording.consentTitle': '录制同意',
    'recording.consentAsk': '{name} 请求录制本次会诊（音频和视频）。您是否同意？',
    'recording.consentAskAnon': '本次会诊请求录制（音频和视频）。您是否同意？',
    'recording.consentNote': '只有各方都同意后才会开始录制。录像随会诊记录保存，仅有权限的人员可以查看，每次查看都会留有记录。',
    'recording.agree': '同意',
    'recording.decline': '拒绝',
    'recording.answerFailed': '未能提交您的答复：{reason}',
    'recording.startFailed': '无法开始录制：{reason}',
    'recording.stopFailed': '无法停止录制：{reason}',

    'recordings.heading': '录像',
    'recordings.loading': '正在加载录像…',
    'recordings.none': '本次会诊没有录像。',
    'recordings.forbidden': '无权查看本次会诊的录像。',
    'recordings.loadFailed': '无法加载录像：{reason}',
    'recordings.playFailed': '无法播放：{reason}',
    'recordings.play': '播放',
    'recordings.reload': '刷新',
    'recordings.item': '{name} · {source} · {duration}',
    'recordings.source.camera': '摄像头',
    'recordings.source.microphone': '麦克风',
    'recordings.source.second': '超声/屏幕',
    'recordings.recovered': '已恢复',
    'recordings.recoveredHint': '录制时服务器意外中断，此文件为恢复的内容，末尾约一秒可能缺失。',

    'error.unknown': '操作失败，请稍后重试。',
    'error.loadFailed': '页面加载失败：{reason}',
    'error.network_error': '无法连接服务器，请检查网络。',
    'error.timeout': '服务器没有响应，请稍后重试。',
    'error.credentials_missing': '请输入用户名和密码。',
    'error.bad_credentials': '用户名或密码错误。',
    'error.rate_limited': '操作过于频繁，请稍后再试。',
    'error.forbidden': '您没有权限进行此操作。',
    'error.not_found': '未找到该会诊。',
    'error.illegal_transition': '会诊当前状态不允许此操作。',
    'error.consult_full': '会诊人数已满。',
    'error.conflict': '会诊刚被他人更新，请刷新后重试。',
    'error.invalid_booking': '预约信息有误，请检查。',
    'error.invalid_intake': '会诊资料有误，请按提示修改。',
    'error.invalid_payload': '提交的信息不完整或格式有误。',
    'error.token_expired': '登录已过期，请重新登录。',
    'error.payload_too_large': '提交的内容过大。',
    'error.internal_error': '服务器内部错误，已记录，请稍后重试。',
    'error.not_in_consult': '您尚未进入该会诊，请重新进入。',
    'error.unknown_peer': '对方已不在会诊中。',
    'error.sdp_too_large': '音视频协商信息过大。',
    'error.invalid_sdp': '音视频协商信息格式有误。',
    'error.message_too_large': '发送的消息过大。',
    'error.relay_unavailable': '此服务器未启用音视频中转，无法录制或经服务器中转。',
    'error.media_refused': '服务器的音视频中转无法使用本浏览器发送的内容（例如编码格式不受支持）。',
    'error.range_not_satisfiable': '请求的录像片段超出了文件范围。',
    'error.busy': '服务器繁忙，未保存任何内容，请稍后重试。',
  },
  en: {
    'app.name': 'Teleconsult',
    'lang.label': 'Language',
    'nav.logout': 'Sign out',
    'common.back': 'Back',

    'login.pageTitle': 'Sign in · Teleconsult',
    'login.heading': 'Sign in',
    'login.username': 'Username',
    'login.password': 'Password',
    'login.submit': 'Sign in',
    'login.session.expired': 'Your session has expired. Please sign in again.',
    'login.session.invalid': 'Your sign-in is no longer valid. Please sign in again.',

    'examRoom.pageTitle': 'Exam room · Teleconsult',
    'examRoom.listHeading': 'Our consults',
    'specialist.pageTitle': 'Specialist · Teleconsult',
    'specialist.incoming': 'Incoming requests',
    'specialist.noIncoming': 'No new requests',
    'specialist.mine': 'My consults',
    'specialist.newRequest': 'New consult request: {patient} ({specialty})',
    'supervisor.pageTitle': 'Supervision · Teleconsult',
    'supervisor.heading': 'Consult records',
    'supervisor.refresh': 'Refresh',

    'book.heading': 'Book a consult',
    'book.patient': 'Patient',
    'book.patientName': 'Name',
    'book.sex': 'Sex',
    'book.age': 'Age (years)',
    'book.summary': 'Clinical summary',
    'book.specialty': 'Specialty',
    'book.specialist': 'Specialist (optional)',
    'book.anySpecialist': 'Any on-duty specialist',
    'book.reason': 'Reason for consult',
    'book.scheduledAt': 'Scheduled time',
    'book.submit': 'Request consult',
    'book.done': 'Consult requested for {patient}.',
    'intake.title': 'Intake',
    'intake.choose': '—',
    'intake.yes': 'Yes',
    'intake.no': 'No',
    'intake.problem.required': 'Required',
    'intake.problem.unknown_field': 'Not on this form',
    'intake.problem.not_a_number': 'Enter a number',
    'intake.problem.not_an_integer': 'Enter a whole number',
    'intake.problem.below_min': 'Must be at least {min}{unit}',
    'intake.problem.above_max': 'Must be at most {max}{unit}',
    'intake.problem.off_step': 'Use steps of {step}{unit}',
    'intake.problem.not_text': 'Enter text',
    'intake.problem.too_long': 'At most {max_length} characters',
    'intake.problem.not_an_option': 'Choose one of the options',
    'intake.problem.not_a_date': 'Enter a valid date',
    'intake.problem.not_a_boolean': 'Choose yes or no',

    'sex.female': 'Female',
    'sex.male': 'Male',
    'sex.unknown': 'Unknown',
    'patient.age': '{age} years',

    'status.requested': 'Requested',
    'status.accepted': 'Accepted',
    'status.waiting': 'Waiting',
    'status.live': 'Live',
    'status.ended': 'Ended',
    'status.declined': 'Declined',
    'status.cancelled': 'Cancelled',
    'status.expired': 'Expired',

    'consults.empty': 'No consults yet',
    'consult.patient': 'Patient',
    'consult.specialty': 'Specialty',
    'consult.reason': 'Reason',
    'consult.summary': 'Summary',
    'consult.scheduledAt': 'Scheduled',
    'consult.requester': 'Requested by',
    'consult.specialist': 'Specialist',
    'consult.anySpecialist': 'Not yet assigned',
    'consult.closingNote': 'Note',
    'consult.status': 'Status',
    'consult.join': 'Join',
    'consult.cancel': 'Cancel consult',
    'consult.cancelConfirm': 'Cancel the consult for {patient}?',
    'consult.accept': 'Accept',
    'consult.decline': 'Decline',
    'consult.declineReason': 'Reason for declining',
    'consult.declineConfirm': 'Decline request',

    'connection.lost': 'Connection to the server lost, reconnecting…',

    'call.titleLoading': 'Consult',
    'call.title': '{patient} · {specialty}',
    'call.localVideo': 'Your camera',
    'call.remoteVideo': 'Video from {name}',
    'call.mute': 'Mute',
    'call.unmute': 'Unmute',
    'call.cameraOff': 'Camera off',
    'call.cameraOn': 'Camera on',
    'call.enableSound': 'Turn sound on',
    'call.leave': 'Step out',
    'call.hangUp': 'End consult',
    'call.back': 'Back to list',
    'call.conclusion': 'Conclusion / advice (optional)',
    'call.state.closed': 'Not in a consult',
    'call.state.joining': 'Joining the consult…',
    'call.state.waiting': 'Waiting for the other side to join…',
    'call.state.connecting': 'Connecting video…',
    'call.state.connected': 'Connected',
    'call.state.reconnecting': 'Connection unstable, reconnecting…',
    'call.state.ended': 'Consult ended',
    'call.state.declined': 'Consult declined',
    'call.state.cancelled': 'Consult cancelled',
    'call.state.expired': 'Consult expired',
    'call.finished.ended': 'The consult has ended.',
    'call.finished.declined': 'The consult was declined.',
    'call.finished.cancelled': 'The consult was cancelled.',
    'call.finished.expired': 'The consult has expired.',
    'call.media.denied': 'Camera or microphone access was denied. You can still see and hear the others; to speak, allow access in the browser settings and join again.',
    'call.media.missing': 'No camera or microphone found. You can still see and hear the others.',
    'call.media.busy': 'The camera or microphone is in use by another program. You can still see and hear the others.',
    'call.media.failed': 'Could not open the camera or microphone. You can still see and hear the others.',
    'call.media.insecure': 'This page was not opened over HTTPS, so the browser does not allow camera and microphone. You can still see and hear the others.',
    'call.peer.joined': '{name} joined the consult.',
    'call.peer.left': '{name} left the consult.',
    'call.peer.lost': '{name} lost their connection; waiting for them to come back…',
    'call.joinFailed': 'Could not join the consult: {reason}',
    'call.hangUpFailed': 'Could not end the consult: {reason}',

    'notes.heading': 'Notes',
    'notes.label': 'New note',
    'notes.placeholder': 'Findings, measurements, advice (everyone sees it at once; it cannot be edited; Ctrl+Enter adds it)',
    'notes.add': 'Add note',
    'notes.none': 'No notes yet.',
    'notes.offset': 'Recording {time}',
    'notes.addFailed': 'The note was not saved: {reason}',

    'record.open': 'Consult record (printable)',
    'record.pageTitle': 'Consult record · Teleconsult',
    'record.heading': 'Teleconsultation record',
    'record.print': 'Print',
    'record.patient': 'Patient',
    'record.consult': 'Consult',
    'record.intake': 'History and findings',
    'record.noIntake': 'None',
    'record.participants': 'Participants',
    'record.requestingDoctor': 'Requesting doctor',
    'record.tookNotes': 'Took notes',
    'record.recorded': 'Recorded',
    'record.times': 'Times',
    'record.requestedAt': 'Requested',
    'record.acceptedAt': 'Accepted',
    'record.startedAt': 'Started',
    'record.endedAt': 'Ended',
    'record.conclusion': 'Conclusion and advice',
    'record.noConclusion': 'None given',
    'record.participant': 'Who',
    'record.source': 'Source',
    'record.starts': 'Starts at',
    'record.duration': 'Duration',
    'record.size': 'Size',
    'record.megabytes': '{n} MB',
    'record.sha256': 'SHA-256',
    'record.printedAt': 'Generated {time}',
    'record.loadFailed': 'The consult record could not be loaded: {reason}',
    'record.partFailed': 'Could not be loaded: {reason}',
    'record.missing': 'The link names no consult.',

    'call.path.p2p': 'Direct',
    'call.path.relay': 'Via server relay',
    'call.relay.failed': 'Trouble with the media through the server: {reason}',
    'call.relay.rejoining': 'The media connection to the server broke; rejoining the consult…',

    'second.share': 'Share ultrasound or screen',
    'second.stop': 'Stop sharing',
    'second.choose': 'Choose what to share:',
    'second.screen': 'Screen',
    'second.device': 'Video device {n}',
    'second.cancel': 'Cancel',
    'second.none': 'Nothing to share: connect the ultrasound capture device, or use a desktop browser that can share the screen.',
    'second.failed': 'Could not open the chosen source. Check the device connection and the browser permissions.',
    'second.caption': '{name} · ultrasound/screen',
    'second.remoteVideo': 'Ultrasound or screen shared by {name}',
    'second.localVideo': 'What you are sharing',

    'recording.on': 'Recording',
    'recording.start': 'Start recording',
    'recording.stop': 'Stop recording',
    'recording.awaiting': 'Waiting for everyone to consent to recording ({count} not answered yet)…',
    'recording.declinedBy': '{name} declined recording; the consult is not being recorded.',
    'recording.stopped': 'Recording stopped.',
    'recording.started': 'Everyone consented; the consult is being recorded.',
    'recording.consentTitle': 'Consent to recording',
    'recording.consentAsk': '{name} asks to record this consult (audio and video). Do you agree?',
    'recording.consentAskAnon': 'This consult is about to be recorded (audio and video). Do you agree?',
    'recording.consentNote': 'Recording starts only once everyone agrees. It is kept with the consult record; only authorised staff can view it, and every viewing is logged.',
    'recording.agree': 'Agree',
    'recording.decline': 'Decline',
    'recording.answerFailed': 'Your answer could not be sent: {reason}',
    'recording.startFailed': 'Could not start recording: {reason}',
    'recording.stopFailed': 'Could not stop recording: {reason}',

    'recordings.heading': 'Recordings',
    'recordings.loading': 'Loading recordings…',
    'recordings.none': 'This consult has no recordings.',
    'recordings.forbidden': 'You are not permitted to view the recordings of this consult.',
    'recordings.loadFailed': 'Could not load the recordings: {reason}',
    'recordings.playFailed': 'Could not play: {reason}',
    'recordings.play': 'Play',
    'recordings.reload': 'Refresh',
    'recordings.item': '{name} · {source} · {duration}',
    'recordings.source.camera': 'Camera',
    'recordings.source.microphone': 'Microphone',
    'recordings.source.second': 'Ultrasound/screen',
    'recordings.recovered': 'Recovered',
    'recordings.recoveredHint': 'The server stopped unexpectedly while recording; this file was recovered and may lack about its last second.',

    'error.unknown': 'Something went wrong. Please try again.',
    'error.loadFailed': 'The page could not load: {reason}',
    'error.network_error': 'Cannot reach the server. Please check the network.',
    'error.timeout': 'The server did not answer. Please try again.',
    'error.credentials_missing': 'Please enter your username and password.',
    'error.bad_credentials': 'Wrong username or password.',
    'error.rate_limited': 'Too many attempts. Please wait a moment.',
    'error.forbidden': 'You are not allowed to do that.',
    'error.not_found': 'Consult not found.',
    'error.illegal_transition': 'The consult is not in a state that allows this.',
    'error.consult_full': 'The consult is full.',
    'error.conflict': 'Someone else just changed this consult. Please refresh and try again.',
    'error.invalid_booking': 'The booking is not valid. Please check it.',
    'error.invalid_intake': 'Some intake answers need correcting (see the fields).',
    'error.invalid_payload': 'Some information is missing or malformed.',
    'error.token_expired': 'Your session has expired. Please sign in again.',
    'error.payload_too_large': 'What you sent is too large.',
    'error.internal_error': 'Server error (it has been logged). Please try again later.',
    'error.not_in_consult': 'You are not in this consult (any more). Please join again.',
    'error.unknown_peer': 'That participant is no longer in the consult.',
    'error.sdp_too_large': 'The media negotiation data is too large.',
    'error.invalid_sdp': 'The media negotiation data is malformed.',
    'error.message_too_large': 'The message is too large.',
    'error.relay_unavailable': 'This server has no media relay: recording and relayed calls are unavailable.',
    'error.media_refused': 'The server\'s media relay cannot use what this browser sent (for example an unsupported codec).',
    'error.range_not_satisfiable': 'The requested part of the recording is outside the file.',
    'error.busy': 'The server is busy and saved nothing. Please try again.',
  },
};
// The duty roster (admin page), phone notifications (specialist page), escalation steps.
Object.assign(DICTIONARIES['zh-CN'], {
  'admin.pageTitle': '值班表 · 远程会诊',
  'admin.heading': '值班表',
  'admin.toSupervisor': '会诊记录',
  'admin.addHeading': '添加值班',
  'admin.start': '开始',
  'admin.end': '结束',
  'admin.tier': '顺序',
  'admin.tier0': '首选值班',
  'admin.tier1': '备班',
  'admin.add': '添加',
  'admin.added': '已添加值班。',
  'admin.remove': '删除',
  'admin.removeLabel': '删除{name}的值班',
  'admin.removed': '已删除值班。',
  'admin.actions': '操作',
  'admin.noShifts': '未来 7 天暂无值班',
  'admin.incomplete': '请选择专家并填写开始和结束时间。',
  'roster.reason.end_before_start': '结束时间必须晚于开始时间。',
  'roster.reason.too_long': '单次值班最长 48 小时，请分成多次。',
  'roster.reason.wrong_specialty': '该专家不属于所选专科。',
  'roster.reason.not_a_specialist': '只有在职的专家才能排班。',
  'roster.reason.bad_tier': '顺序只能是首选值班或备班。',
  'roster.reason.naive_time': '时间缺少时区。',
  'error.invalid_shift': '值班信息无效。',
  'error.invalid_subscription': '此浏览器的推送订阅无效。',
  'push.enable': '开启手机通知',
  'push.enabled': '已开启手机通知：新的会诊申请会推送到本设备。',
  'push.unsupported': '此浏览器不支持推送通知；请保持本页打开以接收新申请。',
  'push.insecure': '推送通知需要 HTTPS 连接；请保持本页打开以接收新申请。',
  'push.denied': '通知权限未开启；请在浏览器设置中允许本站通知，或保持本页打开。',
  'push.failed': '无法订阅推送通知（{reason}）；请保持本页打开以接收新申请。',
  'notices.heading': '通知进度',
  'notices.step0': '已通知值班专家',
  'notices.step1': '无人接受，已通知下一位值班',
  'notices.step2': '仍无人接受，已通知质控主管',
  'notices.told': '通知：{names}',
  'notices.nobody': '没有其他可通知的人',
  'notices.fallback': '无人值班，已通知全部专家',
  'reminder.soon': '会诊即将开始：{patient}，预约时间 {time}',
});
Object.assign(DICTIONARIES.en, {
  'admin.pageTitle': 'Duty roster · Teleconsult',
  'admin.heading': 'Duty roster',
  'admin.toSupervisor': 'Consult records',
  'admin.addHeading': 'Add a shift',
  'admin.start': 'Start',
  'admin.end': 'End',
  'admin.tier': 'Order',
  'admin.tier0': 'Primary',
  'admin.tier1': 'Backup',
  'admin.add': 'Add',
  'admin.added': 'Shift added.',
  'admin.remove': 'Remove',
  'admin.removeLabel': 'Remove the shift of {name}',
  'admin.removed': 'Shift removed.',
  'admin.actions': 'Actions',
  'admin.noShifts': 'No shifts in the coming 7 days',
  'admin.incomplete': 'Choose a specialist and fill in the start and end times.',
  'roster.reason.end_before_start': 'The end must be after the start.',
  'roster.reason.too_long': 'A shift lasts at most 48 hours; enter several shifts.',
  'roster.reason.wrong_specialty': 'This specialist is not in the chosen specialty.',
  'roster.reason.not_a_specialist': 'Only an active specialist can be on duty.',
  'roster.reason.bad_tier': 'The order is primary or backup.',
  'roster.reason.naive_time': 'The times need a time zone.',
  'error.invalid_shift': 'The shift is not valid.',
  'error.invalid_subscription': 'This browser\'s push subscription is not valid.',
  'push.enable': 'Enable phone notifications',
  'push.enabled': 'Phone notifications are on: new requests will be pushed to this device.',
  'push.unsupported': 'This browser cannot receive push notifications; keep this page open to see new requests.',
  'push.insecure': 'Push notifications need an HTTPS connection; keep this page open to see new requests.',
  'push.denied': 'Notifications are not allowed; allow them for this site in the browser settings, or keep this page open.',
  'push.failed': 'Could not subscribe to push notifications ({reason}); keep this page open to see new requests.',
  'notices.heading': 'Who has been told',
  'notices.step0': 'On-duty specialist notified',
  'notices.step1': 'Not accepted; next on duty notified',
  'notices.step2': 'Still not accepted; supervisors notified',
  'notices.told': 'told: {names}',
  'notices.nobody': 'nobody else to tell',
  'notices.fallback': 'nobody on duty, all specialists told',
  'reminder.soon': 'Consult starting soon: {patient}, scheduled for {time}',
});
for (const [code, names] of Object.entries(SPECIALTY)) {
  Object.assign(DICTIONARIES[code], prefixed('specialty', names));
}

const listeners = new Set();

function stored() {
  try {
    const value = localStorage.getItem(STORAGE_KEY);
    return value in DICTIONARIES ? value : DEFAULT_LANG;
  } catch {
    return DEFAULT_LANG; // storage can be blocked (privacy settings); the default still works
  }
}

let current = stored();

export function lang() {
  return current;
}

export function has(key) {
  return key in DICTIONARIES[current];
}

/** The string for `key` in the current language, with {name} placeholders filled in. */
export function t(key, params = {}) {
  const text = DICTIONARIES[current][key] ?? DICTIONARIES[DEFAULT_LANG][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ''));
}

/** Keys present in one dictionary but not the other (the e2e suite asserts there are none). */
export function missingKeys() {
  const [a, b] = Object.values(DICTIONARIES).map((d) => new Set(Object.keys(d)));
  return [...a].filter((k) => !b.has(k)).concat([...b].filter((k) => !a.has(k)));
}

export function onLangChange(callback) {
  listeners.add(callback);
}

/** Translate every data-i18n* element under `root`. */
export function applyTranslations(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
}

export function setLang(code) {
  if (!(code in DICTIONARIES)) return;
  current = code;
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    // Not persisted, but the page still switches.
  }
  document.documentElement.lang = code;
  applyTranslations();
  for (const callback of listeners) callback(code);
}

/** Put a language <select> into every [data-lang-switch] placeholder. */
function mountSwitches() {
  for (const slot of document.querySelectorAll('[data-lang-switch]')) {
    const select = document.createElement('select');
    select.dataset.testid = 'lang-switch';
    select.dataset.i18nAriaLabel = 'lang.label';
    for (const [code, name] of Object.entries(LANGUAGES)) {
      const option = new Option(name, code, false, code === current);
      option.lang = code; // screen readers pronounce each name in its own language
      select.add(option);
    }
    select.addEventListener('change', () => setLang(select.value));
    onLangChange((code) => { select.value = code; });
    slot.replaceChildren(select);
  }
}

/** Call once per page, first thing: sets <html lang>, translates, mounts the switch. */
export function initI18n() {
  document.documentElement.lang = current;
  mountSwitches();
  applyTranslations();
}
