/*
 * check_tlsrec.c - unit tests of the TLS record reader (Check)
 *
 * Table-driven: each row is one direction of a TLS connection, written in
 * hex, and every report the reader must make on it, in order, each with
 * the stream offset where it falls and every field it carries.  Every row
 * runs fed whole, one byte per call, and cut in two at every offset: the
 * reports must be the same (TCP cuts the stream anywhere).
 *
 * The captures are real handshakes between Python's ssl client and server
 * (OpenSSL 3.0), made by tests/unit/tlsrec_capture.py, which also decodes
 * their fields independently for the expectations.  The other rows are
 * written in a small notation (unhex below) that computes the lengths, so
 * that only the length a row is about is ever wrong.
 *
 * "check_tlsrec --seeds DIR" writes the rows as seeds for the fuzz target
 * (tests/fuzz/fuzz_tlsrec.c, which documents the format).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrec.h"
#include "bytes.h"

/* --- the captures: tests/unit/tlsrec_capture.py, Python 3.11, OpenSSL 3.0 ------- */


/* TLS13_C: 597 bytes
 *   hs 512 at 0
 *     ClientHello ends at 517
 *       legacy 0303, versions 0304 0303, sni mail.example.org
 *       suites 1302 1303 1301 c02c c030 c02b c02f cca9 cca8 c024 c028 c023 c027
 *       009f 009e 006b 0067 00ff
 *   ccs 1 at 517
 *   appdata 69 at 523
 */
#define TLS13_C \
	"1603010200010001fc03037f6b967daba813face907b3715dc5e7d6016825774d606731f3b6cbd8b" \
	"fccbde20befb87c60c7efd83410595471e6f42db8455caea743768c13b9f8a8fb8e9df6f00241302" \
	"13031301c02cc030c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff0100018f0000" \
	"001500130000106d61696c2e6578616d706c652e6f7267000b000403000102000a00160014001d00" \
	"17001e0019001801000101010201030104002300000016000000170000000d002a00280403050306" \
	"03080708080809080a080b080408050806040105010601030303010302040205020602002b000504" \
	"03040303002d00020101003300260024001d00204f582745254709fca137306d95db4feda61b7e1c" \
	"dd160faf578cec7d28c4760c001500dd000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000140303" \
	"000101170303004526a23f628e9a005ee86b514419a8f17e57b2f5a04110a4434b255270d3d8cbe0" \
	"6ced94b899a63811453657bde6135a40263562c2aa4fca8b68f10d715a253174bec064774a"

/* TLS13_S: 161 bytes
 *   hs 122 at 0
 *     ServerHello ends at 127
 *       legacy 0303, selected 0304, suite 1302
 *   ccs 1 at 127
 *   appdata 23 at 133
 */
#define TLS13_S \
	"160303007a0200007603033dc17d221242e6ac428d51cae5a8c0b729c24593e081c7529d7c8d6a3a" \
	"056dcd20befb87c60c7efd83410595471e6f42db8455caea743768c13b9f8a8fb8e9df6f13020000" \
	"2e002b0002030400330024001d0020f5dab353273eb0e47f27f8372a5accc7f41f5aeae2c3f5590b" \
	"9452853a81dc63140303000101170303001728021b74b9eeb4ccc3ab1a92c4814f781f8c2477387b" \
	"d7"

/* TLS12_C: 322 bytes
 *   hs 182 at 0
 *     ClientHello ends at 187
 *       legacy 0303, sni mail.example.org
 *       suites c02c c030 c02b c02f cca9 cca8 c024 c028 c023 c027 009f 009e 006b
 *       0067 00ff
 *   hs 37 at 187
 *   ccs 1 at 229
 *   hs 40 at 235
 *   appdata 37 at 280
 */
#define TLS12_C \
	"16030100b6010000b203030214f5731373c2ab0170c4d5c8149a41dcd14947ba44978209dc1db3e9" \
	"ef54ec00001ec02cc030c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff0100006b" \
	"0000001500130000106d61696c2e6578616d706c652e6f7267000b000403000102000a000c000a00" \
	"1d0017001e00190018002300000016000000170000000d002a002804030503060308070808080908" \
	"0a080b08040805080604010501060103030301030204020502060216030300251000002120467fec" \
	"0f864283909d817b71d3182b6e73bdaef45aefddb83c06c095c3d956341403030001011603030028" \
	"a6acb1fc71bb563c0fffbde90f400b334d0b0a3b70186d97ac6a7133c900cfcdb2e871646a03bd39" \
	"1703030025a6acb1fc71bb563d8cb1281d8823a262edf34c8dfc566806460ff5fc57b9b746d96b98" \
	"e085"

/* TLS12_S: 897 bytes
 *   hs 65 at 0
 *     ServerHello ends at 70
 *       legacy 0303, suite c02c
 *   hs 410 at 70
 *   hs 116 at 485
 *   hs 4 at 606
 *   hs 186 at 615
 *   ccs 1 at 806
 *   hs 40 at 812
 *   appdata 35 at 857
 */
#define TLS12_S \
	"16030300410200003d0303801c96c82d8be6266418b86197ac36243ca7dc6275c4c6cc444f574e47" \
	"52440100c02c000015ff01000100000b0004030001020023000000170000160303019a0b00019600" \
	"01930001903082018c30820131a00302010202147255ef6fdda266a95da9c64a36c7037ddbf8b3a4" \
	"300a06082a8648ce3d040302301b3119301706035504030c106d61696c2e6578616d706c652e6f72" \
	"67301e170d3236313132393038333233325a170d3336313132363038333233325a301b3119301706" \
	"035504030c106d61696c2e6578616d706c652e6f72673059301306072a8648ce3d020106082a8648" \
	"ce3d03010703420004539f2107f6cbe67fc0323afca4f829f27424fd2cd210dabedeae3f956bad58" \
	"44934dc9d86ee9c2a880f674244d72238ff858134346a1b270f8cf2643486b15f3a3533051301d06" \
	"03551d0e04160414fcd89323943c587c2cfefb7b4d3344112cd85b51301f0603551d230418301680" \
	"14fcd89323943c587c2cfefb7b4d3344112cd85b51300f0603551d130101ff040530030101ff300a" \
	"06082a8648ce3d040302034900304602210095b1e3c870453654d42729fda94d5763e0ae027c5a8a" \
	"411c9505cfd70b1c7b7f022100ebf46ebe50f28f112f940048e01486f5b210dcdc64861b955a21f6" \
	"0cc60f5d8e16030300740c00007003001d203cf4e812e8822e9cbbb7053bd2dc39a3f61246bf1431" \
	"49eb29d5beddaf63e81b040300483046022100a770382f0e504c549aabf1c30ee46a1304b6c17a4a" \
	"722ca13096666c8f9b81be022100847f03af88c0fd090d9c152e8b8b07f8851b8f3c2beac7c0d4be" \
	"7330187d333016030300040e00000016030300ba040000b600001c2000b00a2a40658e584cd2baf7" \
	"da7f38102de6c530a8f2da8c5131651b2b92e37bb9984f285e5bd51693d3a9720f75e2e9b40824a0" \
	"0c2b459f8f7eae70f993cfb90044c89b5131f0416665682fd74069fc193e041f29847e339e6d3c4d" \
	"59c28d47c38ed34b350a5e11e8b3cf8461900e5db4b1079db636abe0d07f476a85bf3efecefb68e4" \
	"ee76580431329b2a1106274f5151a4d2857e7da1885d9d175eb0a13057458a30f0cc4cdea3b835d0" \
	"5d74bdd34d6714030300010116030300287f27ae395a1a6acc56c99b6b4e71865e965e075496b2f5" \
	"8902312e5c2c51ef13bae3c52e877e2d2617030300237f27ae395a1a6acd9d40d02b11b97013324a" \
	"cc5c24166312630649d6bdeee69737a797"

/* HRR_C: 1114 bytes
 *   hs 512 at 0
 *     ClientHello ends at 517
 *       legacy 0303, versions 0304 0303, sni mail.example.org
 *       suites 1302 1303 1301 c02c c030 c02b c02f cca9 cca8 c024 c028 c023 c027
 *       009f 009e 006b 0067 00ff
 *   ccs 1 at 517
 *   hs 512 at 523
 *     ClientHello ends at 1040
 *       legacy 0303, versions 0304 0303, sni mail.example.org
 *       suites 1302 1303 1301 c02c c030 c02b c02f cca9 cca8 c024 c028 c023 c027
 *       009f 009e 006b 0067 00ff
 *   appdata 69 at 1040
 */
#define HRR_C \
	"1603010200010001fc030351ef8760e88becc2e1af2b19cf3560fb2a9278085581f3c58900ac545b" \
	"49e0ae202b33aa7bcacb990526be399ec17421540f9b09785cd112fe5b121cf807253e8800241302" \
	"13031301c02cc030c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff0100018f0000" \
	"001500130000106d61696c2e6578616d706c652e6f7267000b000403000102000a00160014001d00" \
	"17001e0019001801000101010201030104002300000016000000170000000d002a00280403050306" \
	"03080708080809080a080b080408050806040105010601030303010302040205020602002b000504" \
	"03040303002d00020101003300260024001d0020ef3415a6fd5228bceaa2d295aad3c1cae344e2fb" \
	"c862c59ade1ee49134acdd2c001500dd000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000140303" \
	"0001011603030200010001fc030351ef8760e88becc2e1af2b19cf3560fb2a9278085581f3c58900" \
	"ac545b49e0ae202b33aa7bcacb990526be399ec17421540f9b09785cd112fe5b121cf807253e8800" \
	"24130213031301c02cc030c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff010001" \
	"8f0000001500130000106d61696c2e6578616d706c652e6f7267000b000403000102000a00160014" \
	"001d0017001e0019001801000101010201030104002300000016000000170000000d002a00280403" \
	"05030603080708080809080a080b080408050806040105010601030303010302040205020602002b" \
	"00050403040303002d000201010033006700650018006104580301029aad86d306eae6a3547a4193" \
	"83a88a4b10422f2a41da1ffcdaf0c8cd593b11d3bfbb2bb74d7ca80393e1628011c33d6903bd9fa1" \
	"5b2eae80c7dd2bc36b74e893777ac0dd012cd149185dd4a7c5036100621d9ff68a0bc6470f767efe" \
	"0015009c000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"00000000000000000000000000000000000000000000000000000000000000000000000000000000" \
	"17030300454217d4b7f151d522973ad331a73be0d092bcb1b650afe9c394473b1063676729973072" \
	"09dac15db78cd1eb38d5ba46f28c9df7cabe54554ce3c941ade4d4df8d2d75122f48"

/* HRR_S: 319 bytes
 *   hs 88 at 0
 *     HelloRetryRequest ends at 93
 *       legacy 0303, selected 0304, suite 1302
 *   ccs 1 at 93
 *   hs 187 at 99
 *     ServerHello ends at 291
 *       legacy 0303, selected 0304, suite 1302
 *   appdata 23 at 291
 */
#define HRR_S \
	"1603030058020000540303cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8" \
	"a8339c202b33aa7bcacb990526be399ec17421540f9b09785cd112fe5b121cf807253e8813020000" \
	"0c002b0002030400330002001814030300010116030300bb020000b7030387952ae3f84f3cd4df8b" \
	"2a43e8955907a7d78a9fee4db078c5c338be7d86c370202b33aa7bcacb990526be399ec17421540f" \
	"9b09785cd112fe5b121cf807253e88130200006f002b00020304003300650018006104685340a5ab" \
	"c3e38d7f55f4ddb59e5905e517dda3e569446af4ad7c636c21750d8c3ea5ebf2b1fbabe17654dec2" \
	"64ce6da9d998ca84102bdf585aed03d9a6ea6709c09a6855fa212308e55bd30c14dc4018dc1268ba" \
	"1987aab6ac475c753ff9071703030017f11dc634ba6c4ba6bd60673c0c8979a30560f3c019a988"

/* TLS10_C: 303 bytes
 *   hs 152 at 0
 *     ClientHello ends at 157
 *       legacy 0301, sni mail.example.org
 *       suites c00a c014 0039 0038 0088 0087 c019 003a 0089 c009 c013 0033 0032
 *       0045 0044 c018 0034 0046 0035 0084 002f 0041 00ff
 *   hs 37 at 157
 *   ccs 1 at 199
 *   hs 52 at 205
 *   appdata 36 at 262
 */
#define TLS10_C \
	"160301009801000094030138a779ec6a6006fb2cba8acf012437a2a60a513dffc85c32c93d4b4ee1" \
	"1446b100002ec00ac0140039003800880087c019003a0089c009c0130033003200450044c0180034" \
	"004600350084002f004100ff0100003d0000001500130000106d61696c2e6578616d706c652e6f72" \
	"67000b000403000102000a000c000a001d0017001e00190018002300000016000000170000160301" \
	"00251000002120f90377a5ad4df3980e9eca9c572998658ee8b42bfd0410c7c528ff76040e096314" \
	"03010001011603010034cf941a470e2040ad3bce1345be75f264a0cb47b5b126be02e48855b744e2" \
	"9cf9d1139548cea8e7abe18a2e1baccac813ec2fd9e31703010024a929d58c52ac744e43b9257ec9" \
	"377d1e45c0ee6d9ed952ce6c3368e5f6740090b4ffd662"

/* TLS10_S: 910 bytes
 *   hs 69 at 0
 *     ServerHello ends at 74
 *       legacy 0301, suite c00a
 *   hs 410 at 74
 *   hs 112 at 489
 *   hs 4 at 606
 *   hs 186 at 615
 *   ccs 1 at 806
 *   hs 52 at 812
 *   appdata 36 at 869
 */
#define TLS10_S \
	"16030100450200004103010b35112ce7d881179570c0a763411a3c89c56b1bfbff005f73b1d6a7fd" \
	"6b047b00c00a000019ff01000100000b000403000102002300000016000000170000160301019a0b" \
	"0001960001930001903082018c30820131a00302010202147255ef6fdda266a95da9c64a36c7037d" \
	"dbf8b3a4300a06082a8648ce3d040302301b3119301706035504030c106d61696c2e6578616d706c" \
	"652e6f7267301e170d3236313132393038333233325a170d3336313132363038333233325a301b31" \
	"19301706035504030c106d61696c2e6578616d706c652e6f72673059301306072a8648ce3d020106" \
	"082a8648ce3d03010703420004539f2107f6cbe67fc0323afca4f829f27424fd2cd210dabedeae3f" \
	"956bad5844934dc9d86ee9c2a880f674244d72238ff858134346a1b270f8cf2643486b15f3a35330" \
	"51301d0603551d0e04160414fcd89323943c587c2cfefb7b4d3344112cd85b51301f0603551d2304" \
	"1830168014fcd89323943c587c2cfefb7b4d3344112cd85b51300f0603551d130101ff0405300301" \
	"01ff300a06082a8648ce3d040302034900304602210095b1e3c870453654d42729fda94d5763e0ae" \
	"027c5a8a411c9505cfd70b1c7b7f022100ebf46ebe50f28f112f940048e01486f5b210dcdc64861b" \
	"955a21f60cc60f5d8e16030100700c00006c03001d2093b464919f420ffcb50df18419737849423c" \
	"a2f2012ef37eef7cb97a20bf5b0e00463044022030b5d0966ba5f2b15708843e7d2867f406ace8c1" \
	"f9dbba3126495032f57c3f6602205d4c39fcfce1c407fb4dbf5dee0f37c0b127e7b53a178ed03442" \
	"effc52d3f6e116030100040e00000016030100ba040000b600001c2000b0cf36905a16f651b3b364" \
	"841211a86634dac69acc14396a2ef42200ac722c8ae27494585916ea25bd9a063a34c0521e4d4c70" \
	"89f9d84df7727ef7374802b0009e531a4f633919616eb35ceb452ed7709c800d1b0b275074d4db5c" \
	"5c1eaf8e56c63c7185e3ad9a9b8feca9706617163404aac499e6dae42e4ad94da2a1be6e9e4e64ca" \
	"c45d974469e6f13f63f454c0d1b4d1e78bd7dbf7e6b5fb2536ecbd4da3ce1f132f29e548196da149" \
	"396d84c77728140301000101160301003434821a3985c09e031010319ecce16a23fa9285cd0fc61b" \
	"d1f764e065e417ee51268fd2dd3450ef34e34e4a2bc5f9419c4107f533170301002453217fc07a67" \
	"5c2445b1ca184f5f4c47952629645cae8365d253c52f7242c31bc775bb15"

/* ALERT_C: 250 bytes
 *   hs 245 at 0
 *     ClientHello ends at 250
 *       legacy 0303, versions 0304, sni mail.example.org
 *       suites 1302 1303 1301 00ff
 */
#define ALERT_C \
	"16030100f5010000f1030367c1b70c054253f213177e5763824f06e3a180adb3d1ca53b1cfb1c463" \
	"fb2833208039c7acf72e1c49bef607cccd3bfd954eb92ba77a2a4997eb511ad58e60b15200081302" \
	"1303130100ff010000a00000001500130000106d61696c2e6578616d706c652e6f7267000b000403" \
	"000102000a00160014001d0017001e00190018010001010102010301040023000000160000001700" \
	"00000d001e001c040305030603080708080809080a080b080408050806040105010601002b000302" \
	"0304002d00020101003300260024001d0020eb943769d6c81301c9f2ed7a104369186edefd8256a5" \
	"f8de2a0e71d087332642"

/* ALERT_S: 7 bytes
 *   alert 2 at 0
 */
#define ALERT_S \
	"15030300020246"

/* --- the notation ---------------------------------------------------------------- */

/*
 * In the rows: hex digits, spaces ignored; "(" ... ")" is what it encloses
 * with a 2-byte length in front, "<" ... ">" with a 3-byte one, "{" ... "}"
 * with a 1-byte one (RFC 8446 3.4 vectors, and the handshake length);
 * "R" is 32 bytes of random; "xN:hh" is N bytes hh.
 */
#define SNI(name) "0000 ( ( 00 (" name ") ) )"
#define SV(list) "002b ( {" list "} )"			/* in a ClientHello */
#define SV_S(version) "002b (" version ")"		/* in a ServerHello */
#define CH_BODY(suites, exts) "0303 R {} (" suites ") {00} (" exts ")"
#define HELLO_C(body) "16 0301 ( 01 <" body "> )"
#define SH_BODY(legacy, suite, exts) legacy " R {} " suite " 00 (" exts ")"
#define HELLO_S(body) "16 0303 ( 02 <" body "> )"
#define HRR_RANDOM "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
#define HRR_BODY(suite, exts) "0303 " HRR_RANDOM " {} " suite " 00 (" exts ")"
#define HOST "6d61696c2e74657374"			/* mail.test */
#define SUITES "130113021303c02f"
#define CH13 HELLO_C(CH_BODY(SUITES, SNI(HOST) SV("0304 0303")))
#define SH13 HELLO_S(SH_BODY("0303", "1301", SV_S("0304")))
#define SH12 HELLO_S(SH_BODY("0303", "c02f", "ff01 ({00})"))
#define CCS "14 0303 0001 01"
#define APPDATA "17 0303 0004 deadbeef"
#define CKE "16 0303 ( 10 < {" "x32:ab" "} > )"	/* a ClientKeyExchange */
#define CERT "16 0303 ( 0b < x300:cc > )"	/* a Certificate, not read */
#define SHD "16 0303 0004 0e000000"		/* ServerHelloDone, empty */
#define ENC_FINISHED "16 0303 0028 x40:e7"	/* TLS 1.2 Finished, encrypted */

/* --- the table ------------------------------------------------------------------- */

/* one report the reader must make, with everything it says */
struct report {
	int rc;			/* TP_TLSREC_*, or MORE: all read, nothing more to say */
	long at;		/* stream offset just after it; END(k): k bytes before the end */
	const char *error;
	unsigned legacy, version;
	const char *suites;	/* hex of the list */
	const char *versions;	/* hex of supported_versions, "" if absent */
	const char *sni;	/* "-" if none */
	unsigned suite, selected, hrr;
	int alert;		/* level << 8 | description; -1 encrypted */
};

#define MAX_REPORTS 5

struct row {
	const char *name;
	const char *hex;
	int after_hrr;		/* tp_tlsrec_after_hrr before the first byte */
	struct report reports[MAX_REPORTS];
};

#define END(k) (-1L - (long)(k))

#define E_CH(at, legacy, version, suites, versions, sni) \
	{ TP_TLSREC_CLIENT_HELLO, at, NULL, legacy, version, suites, versions, sni, 0, 0, 0, 0 }
#define E_SH(at, legacy, version, suite, selected) \
	{ TP_TLSREC_SERVER_HELLO, at, NULL, legacy, version, "", "", "-", suite, selected, 0, 0 }
#define E_HRR(at, suite) \
	{ TP_TLSREC_HRR, at, NULL, 0x0303, 0x0304, "", "", "-", suite, 0x0304, 1, 0 }
#define E_APPDATA(at) { TP_TLSREC_APPDATA, at, NULL, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0 }
#define E_ALERT(at, level, desc) \
	{ TP_TLSREC_ALERT, at, NULL, 0, 0, NULL, NULL, NULL, 0, 0, 0, (level) << 8 | (desc) }
#define E_ALERT_ENC(at) { TP_TLSREC_ALERT, at, NULL, 0, 0, NULL, NULL, NULL, 0, 0, 0, -1 }
#define E_ERR(at, token) { TP_TLSREC_ERROR, at, token, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0 }
#define E_MORE { TP_TLSREC_MORE, END(0), NULL, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0 }

/* what the capture client offers (OpenSSL 3.0 defaults) */
#define PY_SUITES13 "130213031301c02cc030c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff"
#define PY_SUITES12 "c02cc030c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff"
#define PY_SUITES10 "c00ac0140039003800880087c019003a0089c009c0130033003200450044c018" \
	"0034004600350084002f004100ff"
#define PY_SNI "mail.example.org"

static const struct row rows[] = {
	/* ------------------------------------------------------- captured */
	{ "capture: TLS 1.3 client", TLS13_C, 0, {
		E_CH(517, 0x0303, 0x0304, PY_SUITES13, "03040303", PY_SNI),
		E_APPDATA(528),		/* after the compatibility CCS */
	} },
	{ "capture: TLS 1.3 server", TLS13_S, 0, {
		E_SH(127, 0x0303, 0x0304, 0x1302, 0x0304),
		E_APPDATA(138),		/* the encrypted EncryptedExtensions */
	} },
	{ "capture: TLS 1.2 client", TLS12_C, 0, {
		E_CH(187, 0x0303, 0x0303, PY_SUITES12, "", PY_SNI),
		E_APPDATA(285),		/* past ClientKeyExchange, CCS, encrypted Finished */
	} },
	{ "capture: TLS 1.2 server, one message a record", TLS12_S, 0, {
		E_SH(70, 0x0303, 0x0303, 0xc02c, 0),
		E_APPDATA(862),
	} },
	{ "capture: HRR, client told: second ClientHello after its CCS", HRR_C, 1, {
		E_CH(517, 0x0303, 0x0304, PY_SUITES13, "03040303", PY_SNI),
		E_CH(1040, 0x0303, 0x0304, PY_SUITES13, "03040303", PY_SNI),
		E_APPDATA(1045),
	} },
	{ "capture: HRR, client not told: after its CCS only framed", HRR_C, 0, {
		E_CH(517, 0x0303, 0x0304, PY_SUITES13, "03040303", PY_SNI),
		E_APPDATA(1045),
	} },
	{ "capture: HRR server: HRR, CCS, ServerHello", HRR_S, 0, {
		E_HRR(93, 0x1302),
		E_SH(291, 0x0303, 0x0304, 0x1302, 0x0304),
		E_APPDATA(296),
	} },
	{ "capture: TLS 1.0 client", TLS10_C, 0, {
		E_CH(157, 0x0301, 0x0301, PY_SUITES10, "", PY_SNI),
		E_APPDATA(267),
	} },
	{ "capture: TLS 1.0 server", TLS10_S, 0, {
		E_SH(74, 0x0301, 0x0301, 0xc00a, 0),
		E_APPDATA(874),
	} },
	{ "capture: TLS 1.3-only client", ALERT_C, 0, {
		E_CH(250, 0x0303, 0x0304, "13021303130100ff", "0304", PY_SNI),
		E_MORE,
	} },
	{ "capture: TLS 1.2 server refusing it: protocol_version alert", ALERT_S, 0, {
		E_ALERT(7, 2, 70),
	} },

	/* ---------------------------------------------------- ClientHello */
	{ "clienthello: TLS 1.3", CH13, 0, {
		E_CH(END(0), 0x0303, 0x0304, SUITES, "03040303", "mail.test"), E_MORE,
	} },
	{ "clienthello: GREASE is listed, not counted", HELLO_C(CH_BODY("0a0a1301",
		SV("7a7a 0304 0303") "0a0a ()")), 0, {
		E_CH(END(0), 0x0303, 0x0304, "0a0a1301", "7a7a03040303", "-"), E_MORE,
	} },
	{ "clienthello: only GREASE versions: the legacy one", HELLO_C(CH_BODY("1301",
		SV("fafa"))), 0, {
		E_CH(END(0), 0x0303, 0x0303, "1301", "fafa", "-"), E_MORE,
	} },
	{ "clienthello: SSLv3, no extensions block",
	  "16 0300 ( 01 < 0300 R {} (000a 0005) {00} > )", 0, {
		E_CH(END(0), 0x0300, 0x0300, "000a0005", "", "-"), E_MORE,
	} },
	{ "clienthello: empty extensions block", HELLO_C(CH_BODY("c02f", "")), 0, {
		E_CH(END(0), 0x0303, 0x0303, "c02f", "", "-"), E_MORE,
	} },
	{ "clienthello: a session id, compression methods, unknown extensions",
	  HELLO_C("0303 R { x32:11 } (c02f c030) {01 00} ( ff01 ({00}) 0017 () "
		  SNI("6d782e6578616d706c652e6f7267") " 0015 ( x100:00 ) )"), 0, {
		E_CH(END(0), 0x0303, 0x0303, "c02fc030", "", "mx.example.org"), E_MORE,
	} },
	{ "clienthello: legacy version 3.255", "16 0301 ( 01 < 03ff R {} (1301) {00} > )", 0, {
		E_CH(END(0), 0x03ff, 0x03ff, "1301", "", "-"), E_MORE,
	} },
	{ "clienthello: SNI of 255 bytes", HELLO_C(CH_BODY("1301", SNI("x255:61"))), 0, {
		E_CH(END(0), 0x0303, 0x0303, "1301", "",
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaa"), E_MORE,
	} },
	{ "clienthello: SNI entries of another type are skipped",
	  HELLO_C(CH_BODY("1301", "0000 ( ( 07 (0102) 00 (" HOST ") 07 () ) )")), 0, {
		E_CH(END(0), 0x0303, 0x0303, "1301", "", "mail.test"), E_MORE,
	} },
	{ "clienthello: across three records, header split too",
	  "16 0301 0002 0100  16 0301 0003 002903  16 0301 ( 03 x32:00 00 0002 0001 0100 ) "
	  "17 0303 0000", 0, {
		E_CH(END(5), 0x0303, 0x0303, "0001", "", "-"), E_APPDATA(END(0)),
	} },
	{ "clienthello: ClientKeyExchange, CCS, encrypted Finished, data",
	  CH13 CKE CCS ENC_FINISHED APPDATA, 0, {
		E_CH(END(42 + 6 + 45 + 9), 0x0303, 0x0304, SUITES, "03040303", "mail.test"),
		E_APPDATA(END(4)),
	} },
	{ "clienthello: truncated record", "16 0301 0200 01 0001fc 0303 x40:00", 0, {
		E_MORE,
	} },
	{ "clienthello: 64 KiB declared: waits for it", "16 0301 0004 01 010000", 0, {
		E_MORE,
	} },

	/* ---------------------------------------------------- ServerHello */
	{ "serverhello: TLS 1.3, CCS, encrypted handshake", SH13 CCS APPDATA, 0, {
		E_SH(END(15), 0x0303, 0x0304, 0x1301, 0x0304), E_APPDATA(END(4)),
	} },
	{ "serverhello: TLS 1.3: handshake records after it are encrypted",
	  SH13 "16 0303 0004 0b000000 16 0303 0005 ffffffffff" APPDATA, 0, {
		E_SH(END(28), 0x0303, 0x0304, 0x1301, 0x0304), E_APPDATA(END(4)),
	} },
	{ "serverhello: TLS 1.3: the rest of its record is encrypted too",
	  "16 0303 ( 02 <" SH_BODY("0303", "1302", SV_S("0304")) "> 0b 00 00 ff ) "
	  "17 0303 0000", 0, {
		E_SH(END(9), 0x0303, 0x0304, 0x1302, 0x0304), E_APPDATA(END(0)),
	} },
	{ "serverhello: TLS 1.2, then the whole flight in one record",
	  "16 0303 ( 02 <" SH_BODY("0303", "c02f", "") "> 0b <x200:cc> 0e 000000 )"
	  CCS ENC_FINISHED APPDATA, 0, {
		E_SH(END(4 + 200 + 4 + 6 + 45 + 9), 0x0303, 0x0303, 0xc02f, 0),
		E_APPDATA(END(4)),
	} },
	{ "serverhello: TLS 1.2, one message a record", SH12 CERT SHD CCS ENC_FINISHED APPDATA, 0, {
		E_SH(END(309 + 9 + 6 + 45 + 9), 0x0303, 0x0303, 0xc02f, 0), E_APPDATA(END(4)),
	} },
	{ "serverhello: SSLv3, no extensions block",
	  "16 0300 ( 02 < 0300 R {} 000a 00 > )", 0, {
		E_SH(END(0), 0x0300, 0x0300, 0x000a, 0), E_MORE,
	} },
	{ "serverhello: a record of 2^14 + 2048 bytes",
	  SH12 "16 0303 4800 0b 0047fc x18428:cc" APPDATA, 0, {
		E_SH(END(18437 + 9), 0x0303, 0x0303, 0xc02f, 0), E_APPDATA(END(4)),
	} },
	{ "serverhello: a plaintext alert after it", SH12 "15 0303 0002 0228", 0, {
		E_SH(END(7), 0x0303, 0x0303, 0xc02f, 0), E_ALERT(END(0), 2, 40),
	} },
	{ "serverhello: an encrypted alert after the CCS", SH12 CCS "15 0303 001a x26:77", 0, {
		E_SH(END(37), 0x0303, 0x0303, 0xc02f, 0), E_ALERT_ENC(END(26)),
	} },
	{ "hrr: by hand (RFC 8446 4.1.4), then a ServerHello without CCS",
	  HELLO_S(HRR_BODY("1301", SV_S("0304") "0033 (0017)")) SH13 APPDATA, 0, {
		E_HRR(END(55 + 9), 0x1301),
		E_SH(END(9), 0x0303, 0x0304, 0x1301, 0x0304), E_APPDATA(END(4)),
	} },
	{ "hrr: then CCS, then the ServerHello in the clear",
	  HELLO_S(HRR_BODY("1302", SV_S("0304"))) CCS SH13, 0, {
		E_HRR(END(6 + 55), 0x1302), E_SH(END(0), 0x0303, 0x0304, 0x1301, 0x0304),
		E_MORE,
	} },

	/* ------------------------------------------------ not TLS at all */
	{ "not tls: SMTP", "45484c4f20636c69656e740d0a", 0, { E_ERR(1, "not-tls") } },
	{ "not tls: HTTP", "474554202f20485454502f312e310d0a", 0, { E_ERR(1, "not-tls") } },
	{ "not tls: nothing yet", "", 0, { E_MORE } },
	{ "not tls: SSLv2 hello", "802e 01 0301 0015 0000 0010 010080 030080", 0, {
		E_ERR(3, "sslv2-hello"),
	} },
	{ "not tls: top bit, not a hello", "8203 02 0000", 0, { E_ERR(3, "not-tls") } },
	{ "not tls: starts with CCS", CCS, 0, { E_ERR(1, "not-tls") } },
	{ "not tls: starts with application data", APPDATA, 0, { E_ERR(1, "not-tls") } },
	{ "not tls: version 2", "16 0201 0004", 0, { E_ERR(2, "not-tls") } },
	{ "not tls: version 3.5", "16 0305 0004", 0, { E_ERR(3, "not-tls") } },
	{ "not tls: first message not a hello", "16 0303 0004 0b000000", 0, {
		E_ERR(9, "unexpected-message"),
	} },
	{ "not tls: an alert first is TLS", "15 0301 0002 0228", 0, { E_ALERT(7, 2, 40) } },

	/* -------------------------------------------------------- records */
	{ "record: 2^14 + 2048 + 1 bytes", "16 0301 4801 01", 0, { E_ERR(5, "record-too-long") } },
	{ "record: empty handshake record", "16 0301 0000", 0, { E_ERR(5, "empty-record") } },
	{ "record: empty alert", CH13 "15 0303 0000", 0, {
		E_CH(END(5), 0x0303, 0x0304, SUITES, "03040303", "mail.test"),
		E_ERR(END(0), "empty-record"),
	} },
	{ "record: one-byte alert", CH13 "15 0303 0001 02", 0, {
		E_CH(END(6), 0x0303, 0x0304, SUITES, "03040303", "mail.test"),
		E_ERR(END(1), "bad-alert"),
	} },
	{ "record: a warning alert in the clear", CH13 "15 0303 0002 0100 ffff", 0, {
		E_CH(END(9), 0x0303, 0x0304, SUITES, "03040303", "mail.test"),
		E_ALERT(END(2), 1, 0),
	} },
	{ "record: empty application data", CH13 "17 0303 0000", 0, {
		E_CH(END(5), 0x0303, 0x0304, SUITES, "03040303", "mail.test"), E_APPDATA(END(0)),
	} },
	{ "record: heartbeat type", CH13 "18 0303 0001 01", 0, {
		E_CH(END(6), 0x0303, 0x0304, SUITES, "03040303", "mail.test"),
		E_ERR(END(5), "bad-record-type"),
	} },
	{ "record: version 2 later", CH13 "16 0203", 0, {
		E_CH(END(3), 0x0303, 0x0304, SUITES, "03040303", "mail.test"),
		E_ERR(END(1), "bad-record-version"),
	} },
	{ "record: version 3.9 later", CH13 "16 0309", 0, {
		E_CH(END(3), 0x0303, 0x0304, SUITES, "03040303", "mail.test"),
		E_ERR(END(0), "bad-record-version"),
	} },
	{ "record: CCS of two bytes", CH13 "14 0303 0002 0101", 0, {
		E_CH(END(7), 0x0303, 0x0304, SUITES, "03040303", "mail.test"),
		E_ERR(END(2), "bad-change-cipher-spec"),
	} },
	{ "record: CCS not 1", CH13 "14 0303 0001 02", 0, {
		E_CH(END(6), 0x0303, 0x0304, SUITES, "03040303", "mail.test"),
		E_ERR(END(0), "bad-change-cipher-spec"),
	} },
	{ "record: alert inside a handshake message",
	  "16 0301 0006 01 00004a 0303  15 0303 0002 0228", 0, {
		E_ERR(END(2), "interleaved-handshake"),
	} },
	{ "record: CCS inside a handshake message header", "16 0301 0002 0100" CCS, 0, {
		E_ERR(END(1), "interleaved-handshake"),
	} },
	{ "record: handshake message of 64 KiB + 1", "16 0301 0004 01 010001", 0, {
		E_ERR(9, "handshake-too-long"),
	} },

	/* ---------------------------------------------- bad ClientHellos */
	{ "bad clienthello: version 2.3", "16 0301 ( 01 < 0203 R {} (1301) {00} () > )", 0, {
		E_ERR(END(0), "bad-clienthello"),
	} },
	{ "bad clienthello: session id of 33",
	  "16 0301 ( 01 < 0303 R { x33:00 } (1301) {00} > )", 0, {
		E_ERR(END(0), "bad-clienthello"),
	} },
	{ "bad clienthello: odd suites", "16 0301 ( 01 < 0303 R {} (130113) {00} > )", 0, {
		E_ERR(END(0), "bad-clienthello"),
	} },
	{ "bad clienthello: no suites", "16 0301 ( 01 < 0303 R {} () {00} > )", 0, {
		E_ERR(END(0), "bad-clienthello"),
	} },
	{ "bad clienthello: no compression", "16 0301 ( 01 < 0303 R {} (1301) {} > )", 0, {
		E_ERR(END(0), "bad-clienthello"),
	} },
	{ "bad clienthello: ends in the random", "16 0301 ( 01 < 0303 x20:00 > )", 0, {
		E_ERR(END(0), "bad-clienthello"),
	} },
	{ "bad clienthello: suites run past the end", "16 0301 ( 01 < 0303 R 00 0010 1301 > )", 0, {
		E_ERR(END(0), "bad-clienthello"),
	} },
	{ "bad clienthello: bytes after the extensions",
	  "16 0301 ( 01 < 0303 R {} (1301) {00} () 00 > )", 0, {
		E_ERR(END(0), "bad-clienthello"),
	} },
	{ "bad clienthello: one byte where extensions go",
	  "16 0301 ( 01 < 0303 R {} (1301) {00} 00 > )", 0, { E_ERR(END(0), "bad-clienthello") } },
	{ "bad clienthello: an extension runs past the block",
	  HELLO_C(CH_BODY("1301", "ff01 0005 00")), 0, { E_ERR(END(0), "bad-clienthello") } },
	{ "bad clienthello: supported_versions twice",
	  HELLO_C(CH_BODY("1301", SV("0304") SV("0303"))), 0, {
		E_ERR(END(0), "bad-clienthello"),
	} },
	{ "bad clienthello: supported_versions odd", HELLO_C(CH_BODY("1301", SV("0304 03"))), 0, {
		E_ERR(END(0), "bad-clienthello"),
	} },
	{ "bad clienthello: supported_versions empty", HELLO_C(CH_BODY("1301", SV(""))), 0, {
		E_ERR(END(0), "bad-clienthello"),
	} },
	{ "bad clienthello: supported_versions with a tail",
	  HELLO_C(CH_BODY("1301", "002b ( {0304} 00 )")), 0, { E_ERR(END(0), "bad-clienthello") } },
	{ "bad clienthello: supported_versions list past its extension",
	  HELLO_C(CH_BODY("1301", "002b ( 04 0304 )")), 0, { E_ERR(END(0), "bad-clienthello") } },
	{ "bad clienthello: server_name twice",
	  HELLO_C(CH_BODY("1301", SNI(HOST) SNI(HOST))), 0, { E_ERR(END(0), "bad-clienthello") } },

	/* ---------------------------------------------------------- SNI */
	{ "bad sni: NUL", HELLO_C(CH_BODY("1301", SNI("6d61696c00657674"))), 0, {
		E_ERR(END(0), "bad-sni"),
	} },
	{ "bad sni: empty name", HELLO_C(CH_BODY("1301", SNI(""))), 0, {
		E_ERR(END(0), "bad-sni"),
	} },
	{ "bad sni: 256 bytes", HELLO_C(CH_BODY("1301", SNI("x256:61"))), 0, {
		E_ERR(END(0), "bad-sni"),
	} },
	{ "bad sni: two host names",
	  HELLO_C(CH_BODY("1301", "0000 ( ( 00 (" HOST ") 00 (" HOST ") ) )")), 0, {
		E_ERR(END(0), "bad-sni"),
	} },
	{ "bad sni: a line feed", HELLO_C(CH_BODY("1301", SNI("6d61696c0a"))), 0, {
		E_ERR(END(0), "bad-sni"),
	} },
	{ "bad sni: a space", HELLO_C(CH_BODY("1301", SNI("6d61 20 696c"))), 0, {
		E_ERR(END(0), "bad-sni"),
	} },
	{ "bad sni: a byte over 0x7e", HELLO_C(CH_BODY("1301", SNI("6d61 c3a4 696c"))), 0, {
		E_ERR(END(0), "bad-sni"),
	} },
	{ "bad sni: empty list", HELLO_C(CH_BODY("1301", "0000 ( () )")), 0, {
		E_ERR(END(0), "bad-sni"),
	} },
	{ "bad sni: empty extension", HELLO_C(CH_BODY("1301", "0000 ()")), 0, {
		E_ERR(END(0), "bad-sni"),
	} },
	{ "bad sni: a tail after the list",
	  HELLO_C(CH_BODY("1301", "0000 ( ( 00 (61) ) 00 )")), 0, {
		E_ERR(END(0), "bad-sni"),
	} },
	{ "bad sni: a name past the list",
	  HELLO_C(CH_BODY("1301", "0000 ( ( 00 0009 6d61 ) )")), 0, {
		E_ERR(END(0), "bad-sni"),
	} },

	/* ---------------------------------------------- bad ServerHellos */
	{ "bad serverhello: supported_versions selects TLS 1.2",
	  HELLO_S(SH_BODY("0303", "c02f", SV_S("0303"))), 0, { E_ERR(END(0), "bad-serverhello") } },
	{ "bad serverhello: supported_versions of three bytes",
	  HELLO_S(SH_BODY("0303", "1301", "002b (030400)")), 0, {
		E_ERR(END(0), "bad-serverhello"),
	} },
	{ "bad serverhello: supported_versions twice",
	  HELLO_S(SH_BODY("0303", "1301", "002b (0304) 002b (0304)")), 0, {
		E_ERR(END(0), "bad-serverhello"),
	} },
	{ "bad serverhello: legacy version 3.4", HELLO_S(SH_BODY("0304", "1301", "")), 0, {
		E_ERR(END(0), "bad-serverhello"),
	} },
	{ "bad serverhello: legacy version 2.0", HELLO_S(SH_BODY("0200", "0001", "")), 0, {
		E_ERR(END(0), "bad-serverhello"),
	} },
	{ "bad serverhello: session id of 33", "16 0303 ( 02 < 0303 R { x33:00 } 1301 00 > )", 0, {
		E_ERR(END(0), "bad-serverhello"),
	} },
	{ "bad serverhello: bytes after the extensions",
	  "16 0303 ( 02 < 0303 R {} 1301 00 () 00 > )", 0, { E_ERR(END(0), "bad-serverhello") } },
	{ "bad serverhello: ends in the suite", "16 0303 ( 02 < 0303 R {} 13 > )", 0, {
		E_ERR(END(0), "bad-serverhello"),
	} },
	{ "bad serverhello: an extension past the block",
	  HELLO_S(SH_BODY("0303", "1301", "002b 0002 03")), 0, {
		E_ERR(END(0), "bad-serverhello"),
	} },
	{ "bad hrr: no supported_versions", HELLO_S(HRR_BODY("1301", "0033 (0017)")), 0, {
		E_ERR(END(0), "bad-serverhello"),
	} },

	/* ------------------------------------------------- out of order */
	{ "order: a second HRR", HELLO_S(HRR_BODY("1301", SV_S("0304")))
	  HELLO_S(HRR_BODY("1301", SV_S("0304"))), 0, {
		E_HRR(END(55), 0x1301), E_ERR(END(0), "unexpected-message"),
	} },
	{ "order: a second ServerHello", SH12 SH12, 0, {
		E_SH(END(55), 0x0303, 0x0303, 0xc02f, 0), E_ERR(END(46), "unexpected-message"),
	} },
	{ "order: a ClientHello from the server", SH12 CH13, 0, {
		E_SH(END(85), 0x0303, 0x0303, 0xc02f, 0), E_ERR(END(76), "unexpected-message"),
	} },
	{ "order: a ServerHello from the client", CH13 SH12, 0, {
		E_CH(END(55), 0x0303, 0x0304, SUITES, "03040303", "mail.test"),
		E_ERR(END(46), "unexpected-message"),
	} },
	{ "order: a second ClientHello in the clear", CH13 CH13, 0, {
		E_CH(END(85), 0x0303, 0x0304, SUITES, "03040303", "mail.test"),
		E_CH(END(0), 0x0303, 0x0304, SUITES, "03040303", "mail.test"), E_MORE,
	} },
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* --- the harness ---------------------------------------------------------------- */

/*
 * NEED - an assertion for the helpers that also run outside a test
 * (--seeds), where Check cannot report: an abort, which inside a test
 * Check reports as an error
 */
#define NEED(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "check_tlsrec: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

static void bytes_addf(struct bytes *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void bytes_addf(struct bytes *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	ck_assert_int_lt(n, (int)sizeof(tmp));
	bytes_add(b, tmp, (size_t)n);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* unhex - the notation of the rows (above the table) into bytes */
static struct bytes unhex(const char *s)
{
	struct bytes b = { 0 };
	size_t open[16], width[16], depth = 0;

	bytes_add(&b, "", 0);
	while (*s != '\0') {
		const char *w = strchr("{(<", *s);
		char *end;

		if (*s == ' ' || *s == '\t') {
			s++;
		} else if (w != NULL) {
			NEED(depth < 16);
			open[depth] = b.len;
			width[depth] = (size_t)(w - "{(<") + 1;
			bytes_add(&b, "\0\0\0", width[depth++]);
			s++;
		} else if (strchr("})>", *s) != NULL) {
			size_t n;

			NEED(depth > 0);
			depth--;
			n = b.len - open[depth] - width[depth];
			NEED(n < (size_t)1 << (8 * width[depth]));
			for (size_t i = 0; i < width[depth]; i++)
				b.p[open[depth] + i] = (uint8_t)(n >> (8 * (width[depth] - 1 - i)));
			s++;
		} else if (*s == 'R') {
			for (int i = 0; i < 32; i++)
				bytes_add(&b, "\x5a", 1);
			s++;
		} else if (*s == 'x') {
			unsigned long n = strtoul(s + 1, &end, 10);
			uint8_t v;

			NEED(*end == ':' && hexval(end[1]) >= 0 && hexval(end[2]) >= 0);
			v = (uint8_t)(hexval(end[1]) << 4 | hexval(end[2]));
			for (unsigned long i = 0; i < n; i++)
				bytes_add(&b, &v, 1);
			s = end + 3;
		} else {
			uint8_t v;

			NEED(hexval(s[0]) >= 0 && hexval(s[1]) >= 0);
			v = (uint8_t)(hexval(s[0]) << 4 | hexval(s[1]));
			bytes_add(&b, &v, 1);
			s += 2;
		}
	}
	NEED(depth == 0);
	return b;
}

static const char *rc_name(int rc)
{
	switch (rc) {
	case TP_TLSREC_ERROR:
		return "error";
	case TP_TLSREC_MORE:
		return "more";
	case TP_TLSREC_CLIENT_HELLO:
		return "clienthello";
	case TP_TLSREC_SERVER_HELLO:
		return "serverhello";
	case TP_TLSREC_HRR:
		return "hrr";
	case TP_TLSREC_APPDATA:
		return "appdata";
	case TP_TLSREC_ALERT:
		return "alert";
	}
	return "?";
}

/* add_hello - every field of a hello, in the words of the table */
static void add_hello(struct bytes *log, const char *kind, size_t at, unsigned legacy,
		      unsigned version, const char *suites, const char *versions, const char *sni,
		      unsigned suite, unsigned selected, unsigned hrr)
{
	bytes_addf(log, "%s@%zu legacy=%04x version=%04x suites=%s versions=%s sni=%s "
		   "suite=%04x selected=%04x hrr=%u; ", kind, at, legacy, version, suites,
		   versions, sni, suite, selected, hrr);
}

static void add_list(struct bytes *b, const uint16_t *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bytes_addf(b, "%04x", list[i]);
	bytes_add(b, "", 0);
}

/* log_report - what the reader said, in the words of the table */
static void log_report(struct bytes *log, const struct tp_tlsrec *r, int rc, size_t at)
{
	const struct tp_tlsrec_hello *h = tp_tlsrec_hello(r);
	struct bytes suites = { 0 }, versions = { 0 };
	uint8_t level, desc;

	if (rc == TP_TLSREC_CLIENT_HELLO || rc == TP_TLSREC_SERVER_HELLO || rc == TP_TLSREC_HRR) {
		ck_assert_ptr_nonnull(h);
		ck_assert_int_eq(h->hrr, rc == TP_TLSREC_HRR);
		ck_assert((h->suites == NULL) == (h->nsuites == 0));
		ck_assert((h->versions == NULL) == (h->nversions == 0));
		add_list(&suites, h->suites, h->nsuites);
		add_list(&versions, h->versions, h->nversions);
		add_hello(log, rc_name(rc), at, h->legacy_version, h->version, (char *)suites.p,
			  (char *)versions.p, h->sni != NULL ? h->sni : "-", h->suite,
			  h->selected_version, (unsigned)h->hrr);
		free(suites.p);
		free(versions.p);
		return;
	}
	ck_assert_ptr_null(h);
	ck_assert((rc == TP_TLSREC_ERROR) == (tp_tlsrec_error(r) != NULL));
	if (rc == TP_TLSREC_ERROR)
		bytes_addf(log, "error@%zu %s; ", at, tp_tlsrec_error(r));
	else if (rc == TP_TLSREC_ALERT && tp_tlsrec_alert(r, &level, &desc) == 0)
		bytes_addf(log, "alert@%zu %u/%u; ", at, level, desc);
	else if (rc == TP_TLSREC_ALERT)
		bytes_addf(log, "alert@%zu encrypted; ", at);
	else
		bytes_addf(log, "%s@%zu; ", rc_name(rc), at);
	if (rc != TP_TLSREC_ALERT)
		ck_assert_int_eq(tp_tlsrec_alert(r, &level, &desc), -1);
}

/* expected - the row's reports in the same words */
static void expected(const struct row *row, size_t len, struct bytes *log)
{
	bytes_add(log, "", 0);
	for (size_t i = 0; i < MAX_REPORTS && (i == 0 || row->reports[i].rc != 0 ||
					       row->reports[i].at != 0); i++) {
		const struct report *e = &row->reports[i];
		size_t at = e->at < 0 ? (size_t)((long)len + 1 + e->at) : (size_t)e->at;

		if (e->rc == TP_TLSREC_CLIENT_HELLO || e->rc == TP_TLSREC_SERVER_HELLO ||
		    e->rc == TP_TLSREC_HRR)
			add_hello(log, rc_name(e->rc), at, e->legacy, e->version, e->suites,
				  e->versions, e->sni, e->suite, e->selected, e->hrr);
		else if (e->rc == TP_TLSREC_ERROR)
			bytes_addf(log, "error@%zu %s; ", at, e->error);
		else if (e->rc == TP_TLSREC_ALERT && e->alert >= 0)
			bytes_addf(log, "alert@%zu %d/%d; ", at, e->alert >> 8, e->alert & 0xff);
		else if (e->rc == TP_TLSREC_ALERT)
			bytes_addf(log, "alert@%zu encrypted; ", at);
		else
			bytes_addf(log, "%s@%zu; ", rc_name(e->rc), at);
	}
}

static int is_final(int rc)
{
	return rc == TP_TLSREC_ERROR || rc == TP_TLSREC_APPDATA || rc == TP_TLSREC_ALERT;
}

/*
 * run_cuts - feed the stream in pieces ending at the cut offsets (each
 * piece in a buffer of its own size, so that a sanitizer build sees any
 * read past it), and log every report.  A final report is checked to
 * stick; a stream read to its end without one logs "more".
 */
static void run_cuts(const struct row *row, const struct bytes *in, const size_t *cuts,
		     size_t ncuts, struct bytes *log)
{
	struct tp_tlsrec *r = tp_tlsrec_new();
	size_t from = 0, used;
	int rc = TP_TLSREC_MORE;

	ck_assert_ptr_nonnull(r);
	bytes_add(log, "", 0);
	if (row->after_hrr)
		tp_tlsrec_after_hrr(r);
	for (size_t c = 0; c <= ncuts && !is_final(rc); c++) {
		size_t to = c < ncuts ? cuts[c] : in->len, at = 0;
		uint8_t *piece = malloc(to - from + 1);

		ck_assert_ptr_nonnull(piece);
		memcpy(piece, in->p + from, to - from);
		do {
			rc = tp_tlsrec_feed(r, piece + at, to - from - at, &used);
			ck_assert_uint_le(used, to - from - at);
			at += used;
			if (rc != TP_TLSREC_MORE)
				log_report(log, r, rc, from + at);
			else
				ck_assert_uint_eq(at, to - from);
		} while (at < to - from && !is_final(rc));
		free(piece);
		from = to;
	}
	if (is_final(rc)) {
		int again = tp_tlsrec_feed(r, (const uint8_t *)"\x16", 1, &used);

		ck_assert_int_eq(again, rc);
		ck_assert_uint_eq(used, 0);
		ck_assert_ptr_null(tp_tlsrec_hello(r));
	} else {
		bytes_addf(log, "more@%zu; ", in->len);
	}
	tp_tlsrec_free(&r);
	ck_assert_ptr_null(r);
}

static void expect_log(const struct row *row, const char *how, const struct bytes *got,
		       const struct bytes *want)
{
	ck_assert_msg(strcmp((char *)got->p, (char *)want->p) == 0,
		      "%s, %s:\n  got  %s\n  want %s", row->name, how, (char *)got->p,
		      (char *)want->p);
}

/* the row fed in one call */
START_TEST(test_row)
{
	const struct row *row = &rows[_i];
	struct bytes in = unhex(row->hex), got = { 0 }, want = { 0 };

	expected(row, in.len, &want);
	run_cuts(row, &in, NULL, 0, &got);
	expect_log(row, "whole", &got, &want);
	free(in.p);
	free(got.p);
	free(want.p);
}
END_TEST

/* one byte per call */
START_TEST(test_row_bytewise)
{
	const struct row *row = &rows[_i];
	struct bytes in = unhex(row->hex), got = { 0 }, want = { 0 };
	size_t *cuts = calloc(in.len + 1, sizeof(*cuts));

	ck_assert_ptr_nonnull(cuts);
	for (size_t i = 0; i < in.len; i++)
		cuts[i] = i + 1;
	expected(row, in.len, &want);
	run_cuts(row, &in, cuts, in.len, &got);
	expect_log(row, "byte by byte", &got, &want);
	free(cuts);
	free(in.p);
	free(got.p);
	free(want.p);
}
END_TEST

/* cut in two, at every offset */
START_TEST(test_row_split)
{
	const struct row *row = &rows[_i];
	struct bytes in = unhex(row->hex), want = { 0 };
	size_t step = in.len > 4096 ? 7 : 1;	/* the 18 KiB record: every 7th */

	expected(row, in.len, &want);
	for (size_t k = 0; k <= in.len; k += step) {
		struct bytes got = { 0 };
		char how[64];

		run_cuts(row, &in, &k, 1, &got);
		snprintf(how, sizeof(how), "cut at %zu", k);
		expect_log(row, how, &got, &want);
		free(got.p);
	}
	free(in.p);
	free(want.p);
}
END_TEST

START_TEST(test_row_count)
{
	ck_assert_uint_ge(NROWS, 90);
}
END_TEST

/* --- beyond the table ----------------------------------------------------------- */

/*
 * the captured TLS 1.3 ClientHello re-cut into records of every size from
 * 1 byte: the same hello, reported where its last record ends
 */
START_TEST(test_refragment)
{
	struct bytes cap = unhex(TLS13_C), want = { 0 };
	const uint8_t *msg = cap.p + 5;
	size_t mlen = 512;
	struct row row = { "refragmented", "", 0, {
		E_CH(END(0), 0x0303, 0x0304, PY_SUITES13, "03040303", PY_SNI), E_MORE,
	} };

	ck_assert_uint_eq((size_t)cap.p[3] << 8 | cap.p[4], mlen);
	for (size_t frag = 1; frag <= mlen; frag++) {
		struct bytes in = { 0 }, got = { 0 };
		char how[64];

		for (size_t at = 0; at < mlen; at += frag) {
			size_t n = mlen - at < frag ? mlen - at : frag;
			uint8_t hdr[5] = { 0x16, 0x03, 0x01, (uint8_t)(n >> 8), (uint8_t)n };

			bytes_add(&in, hdr, sizeof(hdr));
			bytes_add(&in, msg + at, n);
		}
		want.len = 0;
		expected(&row, in.len, &want);
		run_cuts(&row, &in, NULL, 0, &got);
		snprintf(how, sizeof(how), "records of %zu bytes", frag);
		expect_log(&row, how, &got, &want);
		free(in.p);
		free(got.p);
	}
	free(cap.p);
	free(want.p);
}
END_TEST

/*
 * hello_of - a ClientHello whose body is exactly body_len bytes (a padding
 * extension, RFC 7685, fills it), in records of 2^14
 */
static struct bytes hello_of(size_t body_len)
{
	struct bytes msg = { 0 }, in = { 0 };
	size_t pad = body_len - 47;
	uint8_t head[] = { 0x01, (uint8_t)(body_len >> 16), (uint8_t)(body_len >> 8),
			   (uint8_t)body_len, 0x03, 0x03 };
	uint8_t tail[] = { 0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00,
			   (uint8_t)((pad + 4) >> 8), (uint8_t)(pad + 4), 0x00, 0x15,
			   (uint8_t)(pad >> 8), (uint8_t)pad };

	bytes_add(&msg, head, sizeof(head));
	for (int i = 0; i < 32; i++)
		bytes_add(&msg, "\x5a", 1);
	bytes_add(&msg, tail, sizeof(tail));
	ck_assert_uint_eq(msg.len, 4 + 47);
	for (size_t i = 0; i < pad; i++)
		bytes_add(&msg, "", 1);
	for (size_t at = 0; at < msg.len; at += 16384) {
		size_t n = msg.len - at < 16384 ? msg.len - at : 16384;
		uint8_t hdr[5] = { 0x16, 0x03, 0x01, (uint8_t)(n >> 8), (uint8_t)n };

		bytes_add(&in, hdr, sizeof(hdr));
		bytes_add(&in, msg.p + at, n);
	}
	free(msg.p);
	return in;
}

/* a handshake message of 64 KiB is read; one byte more is refused at its header */
START_TEST(test_handshake_limit)
{
	struct bytes in = hello_of(TP_TLSREC_HANDSHAKE_MAX), got = { 0 }, want = { 0 };
	struct row ok = { "64 KiB hello", "", 0, {
		E_CH(END(0), 0x0303, 0x0303, "1301", "", "-"), E_MORE,
	} };
	struct row over = { "64 KiB + 1 hello", "", 0, { E_ERR(9, "handshake-too-long") } };

	expected(&ok, in.len, &want);
	run_cuts(&ok, &in, NULL, 0, &got);
	expect_log(&ok, "whole", &got, &want);
	free(in.p);
	in = hello_of(TP_TLSREC_HANDSHAKE_MAX + 1);
	got.len = want.len = 0;
	expected(&over, in.len, &want);
	run_cuts(&over, &in, NULL, 0, &got);
	expect_log(&over, "whole", &got, &want);
	free(in.p);
	free(got.p);
	free(want.p);
}
END_TEST

/* as many suites as a 64 KiB hello can carry, all reported in order */
START_TEST(test_many_suites)
{
	struct bytes in = { 0 };
	struct tp_tlsrec *r = tp_tlsrec_new();
	const struct tp_tlsrec_hello *h;
	size_t used, at = 0, n = (TP_TLSREC_HANDSHAKE_MAX - 2 - 32 - 1 - 2 - 2) / 2;
	size_t body = 2 + 32 + 1 + 2 + 2 * n + 2;
	uint8_t head[] = { 0x01, (uint8_t)(body >> 16), (uint8_t)(body >> 8), (uint8_t)body,
			   0x03, 0x03 };
	uint8_t suites_len[] = { (uint8_t)(2 * n >> 8), (uint8_t)(2 * n) };
	struct bytes msg = { 0 };
	int rc = TP_TLSREC_MORE;

	ck_assert_ptr_nonnull(r);
	bytes_add(&msg, head, sizeof(head));
	for (int i = 0; i < 32; i++)
		bytes_add(&msg, "\x5a", 1);
	bytes_add(&msg, "", 1);			/* no session id */
	bytes_add(&msg, suites_len, 2);
	for (size_t i = 0; i < n; i++) {
		uint8_t s[2] = { (uint8_t)(i >> 8), (uint8_t)i };

		bytes_add(&msg, s, 2);
	}
	bytes_add(&msg, "\x01\x00", 2);
	for (size_t o = 0; o < msg.len; o += 16384) {
		size_t k = msg.len - o < 16384 ? msg.len - o : 16384;
		uint8_t hdr[5] = { 0x16, 0x03, 0x03, (uint8_t)(k >> 8), (uint8_t)k };

		bytes_add(&in, hdr, sizeof(hdr));
		bytes_add(&in, msg.p + o, k);
	}
	while (at < in.len && rc == TP_TLSREC_MORE) {
		rc = tp_tlsrec_feed(r, in.p + at, in.len - at, &used);
		at += used;
	}
	ck_assert_int_eq(rc, TP_TLSREC_CLIENT_HELLO);
	ck_assert_uint_eq(at, in.len);
	h = tp_tlsrec_hello(r);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(h->nsuites, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(h->suites[i], i);
	tp_tlsrec_free(&r);
	free(msg.p);
	free(in.p);
}
END_TEST

/* the quick look at the first bytes */
static const struct {
	const char *hex;
	int want;
} starts[] = {
	{ "", 0 }, { "16", 0 }, { "1603", 0 },
	{ "160301", 1 }, { "160300", 1 }, { "160304", 1 }, { "160305", 0 },
	{ "160201", 0 }, { "150301", 0 }, { "170303", 0 }, { "802e01", 0 }, { "454847", 0 },
	{ "16030102", 1 }, { "1603010200", 1 }, { "160301020001", 1 },
	{ "160301020002", 0 },		/* a ServerHello */
	{ "160301000001", 0 },		/* an empty record */
	{ "160301480001", 1 },		/* 2^14 + 2048 */
	{ "160301480101", 0 },		/* one more */
	{ "160301000101", 1 },		/* one byte of it */
};

START_TEST(test_is_clienthello_start)
{
	struct bytes b = unhex(starts[_i].hex);

	ck_assert_msg(tp_tlsrec_is_clienthello_start(b.p, b.len) == starts[_i].want,
		      "\"%s\": want %d", starts[_i].hex, starts[_i].want);
	free(b.p);
}
END_TEST

/* every captured ClientHello passes the quick look, no ServerHello does */
START_TEST(test_is_clienthello_start_captures)
{
	static const char *const client[] = { TLS13_C, TLS12_C, HRR_C, TLS10_C, ALERT_C };
	static const char *const server[] = { TLS13_S, TLS12_S, HRR_S, TLS10_S, ALERT_S };

	for (size_t i = 0; i < sizeof(client) / sizeof(client[0]); i++) {
		struct bytes c = unhex(client[i]), s = unhex(server[i]);

		ck_assert_int_eq(tp_tlsrec_is_clienthello_start(c.p, c.len), 1);
		ck_assert_int_eq(tp_tlsrec_is_clienthello_start(c.p, 6), 1);
		ck_assert_int_eq(tp_tlsrec_is_clienthello_start(s.p, s.len), 0);
		free(c.p);
		free(s.p);
	}
}
END_TEST

/* before anything: no hello, no alert, no error; free sets NULL and takes NULL */
START_TEST(test_api)
{
	struct tp_tlsrec *r = tp_tlsrec_new();
	uint8_t level = 7, desc = 7;
	size_t used = 99;

	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_null(tp_tlsrec_hello(r));
	ck_assert_ptr_null(tp_tlsrec_error(r));
	ck_assert_int_eq(tp_tlsrec_alert(r, &level, &desc), -1);
	ck_assert_uint_eq(level, 7);
	ck_assert_int_eq(tp_tlsrec_feed(r, (const uint8_t *)"", 0, &used), TP_TLSREC_MORE);
	ck_assert_uint_eq(used, 0);
	tp_tlsrec_free(&r);
	ck_assert_ptr_null(r);
	tp_tlsrec_free(&r);
	tp_tlsrec_free(NULL);
}
END_TEST

/* the hello is reported once: the next call, even an empty one, clears it */
START_TEST(test_hello_once)
{
	struct bytes in = unhex(CH13);
	struct tp_tlsrec *r = tp_tlsrec_new();
	size_t used;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(tp_tlsrec_feed(r, in.p, in.len, &used), TP_TLSREC_CLIENT_HELLO);
	ck_assert_uint_eq(used, in.len);
	ck_assert_ptr_nonnull(tp_tlsrec_hello(r));
	ck_assert_str_eq(tp_tlsrec_hello(r)->sni, "mail.test");
	ck_assert_int_eq(tp_tlsrec_feed(r, in.p, 0, &used), TP_TLSREC_MORE);
	ck_assert_ptr_null(tp_tlsrec_hello(r));
	tp_tlsrec_free(&r);
	free(in.p);
}
END_TEST

static Suite *tlsrec_suite(void)
{
	Suite *s = suite_create("tlsrec");
	TCase *tc = tcase_create("rows");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_row, 0, (int)NROWS);
	tcase_add_loop_test(tc, test_row_bytewise, 0, (int)NROWS);
	tcase_add_loop_test(tc, test_row_split, 0, (int)NROWS);
	tcase_add_test(tc, test_row_count);
	suite_add_tcase(s, tc);
	tc = tcase_create("api");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_refragment);
	tcase_add_test(tc, test_handshake_limit);
	tcase_add_test(tc, test_many_suites);
	tcase_add_loop_test(tc, test_is_clienthello_start, 0,
			    (int)(sizeof(starts) / sizeof(starts[0])));
	tcase_add_test(tc, test_is_clienthello_start_captures);
	tcase_add_test(tc, test_api);
	tcase_add_test(tc, test_hello_once);
	suite_add_tcase(s, tc);
	return s;
}

/* --- fuzz seeds ----------------------------------------------------------------- */

/*
 * write_seeds - one seed per row, in the format of tests/fuzz/fuzz_tlsrec.c:
 * a flags byte (after_hrr, and two cut points), the cut points (16-bit,
 * little-endian) at a third and two thirds of the stream, the stream
 */
static int write_seeds(const char *dir)
{
	for (size_t n = 0; n < NROWS; n++) {
		struct bytes in = unhex(rows[n].hex);
		size_t c1 = in.len / 3, c2 = 2 * in.len / 3;
		uint8_t head[5] = { (uint8_t)(rows[n].after_hrr | 2 << 1), (uint8_t)c1,
				    (uint8_t)(c1 >> 8), (uint8_t)c2, (uint8_t)(c2 >> 8) };
		char path[4096];
		FILE *fp;

		snprintf(path, sizeof(path), "%s/row-%03zu", dir, n + 1);
		fp = fopen(path, "wb");
		if (fp == NULL) {
			fprintf(stderr, "check_tlsrec: %s: %s\n", path, strerror(errno));
			free(in.p);
			return 1;
		}
		fwrite(head, 1, sizeof(head), fp);
		fwrite(in.p, 1, in.len, fp);
		free(in.p);
		if (fclose(fp) != 0)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	if (argc == 3 && strcmp(argv[1], "--seeds") == 0)
		return write_seeds(argv[2]);
	sr = srunner_create(tlsrec_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
