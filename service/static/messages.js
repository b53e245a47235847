// Every word the citizen page shows, in Vietnamese (default) and English.
// Written for an older person who is new to the internet: short sentences,
// everyday words, no jargon. Keep the Vietnamese in NFC (a test checks it).

export const MESSAGES = {
  vi: {
    pageTitle: "Tự kiểm tra kỹ năng số",
    brand: "Kỹ năng số của tôi",
    switchTo: "English",
    switchToLabel: "Switch to English",
    loading: "Đang tải, xin chờ một chút…",
    welcomeHeading: "Tự kiểm tra kỹ năng số",
    welcomeIntro:
      "Bài kiểm tra này giúp bạn biết mình dùng điện thoại, máy tính và Internet ở mức nào, và nên học thêm điều gì.",
    welcomeTime:
      "Một nửa số người làm xong trong khoảng {median} phút; 9 trên 10 người xong trong {p90} phút.",
    welcomeLength:
      "Bài dừng ngay khi đã đủ để biết mức của bạn: một nửa số người chỉ trả lời {median} câu trở xuống, nhiều nhất là {max} câu. Mỗi màn hình chỉ có một câu.",
    welcomeLengthAny: "Bài dừng ngay khi đã đủ để biết mức của bạn. Mỗi màn hình chỉ có một câu.",
    testLength:
      "Bài có nhiều nhất {max} câu và dừng ngay khi đã đủ để biết mức của bạn. Mỗi màn hình chỉ có một câu.",
    formLength:
      "Bài có {n} câu; mọi người đều trả lời cùng những câu này, theo cùng một thứ tự. Mỗi màn hình chỉ có một câu.",
    testUnknown:
      "Không tìm thấy bài kiểm tra “{name}”. Mời bạn làm bài kiểm tra chung của thành phố dưới đây.",
    welcomePoints: [
      "Câu hỏi sẽ dễ hơn hoặc khó hơn tùy theo câu trả lời của bạn. Nếu chưa biết, bạn cứ chọn câu mình thấy đúng nhất.",
      "Không cần họ tên, số điện thoại hay số căn cước. Chúng tôi không thu thập thông tin cá nhân.",
      "Nếu phải dừng giữa chừng, bạn chỉ cần mở lại trang này để làm tiếp.",
    ],
    optionalHeading: "Thông tin thêm (không bắt buộc)",
    optionalHelp:
      "Giúp thành phố biết nơi nào cần mở thêm lớp hướng dẫn. Bạn có thể bỏ qua phần này.",
    wardLabel: "Phường hoặc xã nơi bạn sống",
    wardHint: "Ví dụ: Phường Hải Châu hoặc Xã Hòa Vang. Có thể để trống.",
    cohortBefore:
      "Bài làm này được tính cho lớp học của bạn (mã {code}, làm trước khóa học). Bạn không cần ghi tên.",
    cohortAfter:
      "Bài làm này được tính cho lớp học của bạn (mã {code}, làm sau khóa học). Bạn không cần ghi tên.",
    cohortExpired:
      "Liên kết của lớp học đã hết hạn, nên bài làm này không được tính cho lớp. Bạn vẫn làm bài bình thường.",
    ageLabel: "Độ tuổi của bạn",
    ageNone: "Không muốn trả lời",
    ageGroups: {
      "under-15": "Dưới 15 tuổi",
      "15-24": "Từ 15 đến 24 tuổi",
      "25-34": "Từ 25 đến 34 tuổi",
      "35-44": "Từ 35 đến 44 tuổi",
      "45-54": "Từ 45 đến 54 tuổi",
      "55-64": "Từ 55 đến 64 tuổi",
      "65+": "Từ 65 tuổi trở lên",
    },
    start: "Bắt đầu làm bài",
    starting: "Đang chuẩn bị câu hỏi…",
    questionCounter: "Câu {n}",
    progressAbout: "Thường khoảng {median} câu, nhiều nhất {max} câu",
    progressAboutAny: "Bài dừng khi đã đủ để biết mức của bạn",
    progressAtMost: "Nhiều nhất {max} câu",
    progressOf: "Bài có {max} câu",
    progressLeft: "Sau câu này còn nhiều nhất {k} câu",
    progressLast: "Đây là câu cuối cùng",
    progressLabel: "Tiến độ làm bài",
    progressValue: "Câu {n}, đã làm được khoảng {percent} phần trăm",
    chooseHint: "Chọn một câu trả lời, rồi bấm “Tiếp tục”.",
    chosenHint: "Bạn đã chọn. Bấm “Tiếp tục” để sang câu sau.",
    continue: "Tiếp tục",
    readAloud: "Nghe đọc câu hỏi",
    stopReading: "Dừng đọc",
    optionSpoken: "Lựa chọn {n}: {text}.",
    sending: "Đang gửi…",
    welcomeBack: "Chào mừng bạn quay lại! Mời bạn làm tiếp từ câu {n}.",
    alreadyRecorded: "Câu trước đã được ghi nhận. Mời bạn làm tiếp.",
    restart: "Làm lại từ đầu",
    restartQuestion:
      "Bạn muốn làm lại từ đầu? Những câu đã trả lời sẽ không được tính nữa.",
    restartYes: "Có, làm lại",
    restartNo: "Không, làm tiếp",
    errorNetwork:
      "Chưa gửi được vì mạng đang chập chờn. Câu trả lời của bạn vẫn còn. Hãy kiểm tra mạng rồi bấm “Thử lại”.",
    errorServer:
      "Hệ thống đang bận. Câu trả lời của bạn vẫn còn. Xin đợi một lát rồi bấm “Thử lại”.",
    errorStart:
      "Chưa bắt đầu được vì mạng hoặc hệ thống đang trục trặc. Xin đợi một lát rồi bấm “Thử lại”.",
    errorGone:
      "Không tìm thấy bài làm trước của bạn. Mời bạn bắt đầu một bài mới.",
    retry: "Thử lại",
    resultHeading: "Kết quả của bạn",
    resultTest: "Bài kiểm tra: {title}",
    overallLabel: "Mức kỹ năng số chung",
    overallLabelArea: "Mức của bạn ở lĩnh vực {area}",
    scoreOutOf: "{score} / 100 điểm",
    interval: "Điểm thật của bạn nhiều khả năng nằm trong khoảng từ {low} đến {high}.",
    notSettled: "Mức này chưa thật chắc chắn: khoảng {n} trên 10 khả năng đây đúng là mức của bạn.",
    notSettledLength:
      "Bài đã hỏi đủ số câu tối đa nhưng điểm của bạn vẫn ở gần ranh giới giữa hai mức.",
    notSettledWhy: "Điểm của bạn ở gần ranh giới giữa hai mức.",
    notSettledAgain: "Làm lại bài vào dịp khác sẽ cho kết quả rõ hơn.",
    answeredCount: "Bạn đã trả lời {n} câu.",
    areasHeading: "Điểm theo {n} lĩnh vực",
    areasHeadingAny: "Điểm theo từng lĩnh vực",
    areaScore: "{level} · {score} điểm",
    chartCaption: "Thanh càng dài, điểm càng cao. Điểm tối đa là 100.",
    areasLessSure:
      "Mỗi lĩnh vực chỉ có vài câu hỏi, nên mức của từng lĩnh vực kém chắc chắn hơn mức chung.",
    nextHeading: "Nên học gì tiếp theo?",
    nextHeadingTop: "Chia sẻ kỹ năng của bạn",
    basicSkillNote: "Dấu ★ đánh dấu một trong {n} kỹ năng số cơ bản mà ai cũng nên có.",
    basicSkillLabel: "Kỹ năng số cơ bản: ",
    moreAreas: "Xem thêm {n} lĩnh vực khác",
    topAreas: "Bạn đã ở mức cao nhất trong: {areas}.",
    newTest: "Làm bài mới",
    newTestQuestion:
      "Bạn muốn làm một bài mới? Kết quả này sẽ không hiện lại trên máy này nữa, bạn có thể chụp màn hình để giữ lại.",
    newTestYes: "Có, làm bài mới",
    newTestNo: "Không, xem tiếp kết quả",
    areaFallback: "Lĩnh vực {code}",
    levelFallback: "Mức {code}",
    footer:
      "Không thu thập thông tin cá nhân. Dựa trên Khung năng lực số cho công dân của thành phố Đà Nẵng.",
    footerFramework: "Không thu thập thông tin cá nhân. Dựa trên {framework}.",
  },
  en: {
    pageTitle: "Check your digital skills",
    brand: "My digital skills",
    switchTo: "Tiếng Việt",
    switchToLabel: "Chuyển sang tiếng Việt",
    loading: "Loading, please wait…",
    welcomeHeading: "Check your digital skills",
    welcomeIntro:
      "This test shows how well you use phones, computers and the internet, and what to learn next.",
    welcomeTime:
      "Half of the people finish in about {median} minutes; 9 in 10 finish within {p90} minutes.",
    welcomeLength:
      "The test stops as soon as it knows your level: half of the people answer {median} questions or fewer, {max} at most. There is one question on each screen.",
    welcomeLengthAny: "The test stops as soon as it knows your level. There is one question on each screen.",
    testLength:
      "The test has at most {max} questions and stops as soon as it knows your level. There is one question on each screen.",
    formLength:
      "The test has {n} questions; everyone answers the same questions in the same order. There is one question on each screen.",
    testUnknown: "The test “{name}” could not be found. Please take the city's test below.",
    welcomePoints: [
      "Questions get easier or harder depending on your answers. If you are not sure, choose the answer that seems best.",
      "No name, phone number or ID number is needed. We do not collect personal data.",
      "If you have to stop, just open this page again to continue.",
    ],
    optionalHeading: "A little more about you (optional)",
    optionalHelp:
      "This helps the city see where more classes are needed. You can skip it.",
    wardLabel: "Ward or commune where you live",
    wardHint: "For example: Phường Hải Châu or Xã Hòa Vang. You can leave it empty.",
    cohortBefore:
      "This test counts for your training class (code {code}, taken before the course). You do not need to give your name.",
    cohortAfter:
      "This test counts for your training class (code {code}, taken after the course). You do not need to give your name.",
    cohortExpired:
      "Your class's link has expired, so this test does not count for the class. You can take it as usual.",
    ageLabel: "Your age",
    ageNone: "I prefer not to say",
    ageGroups: {
      "under-15": "Under 15",
      "15-24": "15 to 24",
      "25-34": "25 to 34",
      "35-44": "35 to 44",
      "45-54": "45 to 54",
      "55-64": "55 to 64",
      "65+": "65 or older",
    },
    start: "Start the test",
    starting: "Getting your first question…",
    questionCounter: "Question {n}",
    progressAbout: "Usually about {median} questions, {max} at most",
    progressAboutAny: "The test stops when it knows your level",
    progressAtMost: "{max} questions at most",
    progressOf: "{max} questions in all",
    progressLeft: "At most {k} more after this one",
    progressLast: "This is the last question",
    progressLabel: "Progress",
    progressValue: "Question {n}, about {percent} percent done",
    chooseHint: "Choose one answer, then press “Continue”.",
    chosenHint: "Answer chosen. Press “Continue” for the next question.",
    continue: "Continue",
    readAloud: "Read the question aloud",
    stopReading: "Stop reading",
    optionSpoken: "Option {n}: {text}.",
    sending: "Sending…",
    welcomeBack: "Welcome back! Please continue from question {n}.",
    alreadyRecorded: "Your last answer was saved. Please continue.",
    restart: "Start again",
    restartQuestion: "Start again from the beginning? Your answers so far will not count.",
    restartYes: "Yes, start again",
    restartNo: "No, continue",
    errorNetwork:
      "Could not send: the connection is unstable. Your answer is kept. Check your connection, then press “Try again”.",
    errorServer:
      "The system is busy. Your answer is kept. Please wait a moment, then press “Try again”.",
    errorStart:
      "Could not start: the connection or the system has a problem. Please wait a moment, then press “Try again”.",
    errorGone: "Your earlier test could not be found. Please start a new one.",
    retry: "Try again",
    resultHeading: "Your result",
    resultTest: "Test: {title}",
    overallLabel: "Overall digital skill level",
    overallLabelArea: "Your level in the area {area}",
    scoreOutOf: "{score} / 100 points",
    interval: "Your true score is most likely between {low} and {high}.",
    notSettled: "This level is not certain yet: there is about a {n} in 10 chance that it is your level.",
    notSettledLength:
      "The test asked its largest number of questions, but your score is still close to the line between two levels.",
    notSettledWhy: "Your score is close to the line between two levels.",
    notSettledAgain: "Taking the test again another time will make it clearer.",
    answeredCount: "You answered {n} questions.",
    areasHeading: "Scores in the {n} areas",
    areasHeadingAny: "Scores by area",
    areaScore: "{level} · {score} points",
    chartCaption: "A longer bar means a higher score. The top score is 100.",
    areasLessSure:
      "Each area had only a few questions, so the level of each area is less certain than the overall level.",
    nextHeading: "What to learn next?",
    nextHeadingTop: "Share your skills",
    basicSkillNote: "★ marks one of the {n} basic digital skills everyone should have.",
    basicSkillLabel: "Basic digital skill: ",
    moreAreas: "Show {n} more areas",
    topAreas: "You are already at the highest level in: {areas}.",
    newTest: "Take a new test",
    newTestQuestion:
      "Take a new test? This result will no longer show on this device; you can take a screenshot to keep it.",
    newTestYes: "Yes, take a new test",
    newTestNo: "No, keep reading my result",
    areaFallback: "Area {code}",
    levelFallback: "Level {code}",
    footer:
      "No personal data is collected. Based on Đà Nẵng's digital competence framework for citizens.",
    footerFramework: "No personal data is collected. Based on: {framework}.",
  },
};

export const LANGUAGES = Object.keys(MESSAGES);

/**
 * Look up a message and fill in {placeholders}.
 *
 * @param {string} lang - "vi" or "en".
 * @param {string} key - message name.
 * @param {Object<string, string|number>} [params] - values for placeholders.
 * @returns {string}
 */
export function t(lang, key, params = {}) {
  const table = MESSAGES[lang] || MESSAGES.vi;
  const text = key in table ? table[key] : MESSAGES.vi[key];
  if (typeof text !== "string") {
    return text;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}
