/*
 * Probe for turbo_two_threads.c: decodes one JPEG N times with tj3Decompress8 and with the
 * two-thread prototype, in turn, checks the pixels are identical and prints median and minimum
 * times (ms). Build against the libjpeg-turbo that turbojpeg-sys vendors (OUT = its build
 * output folder, SRC = its libjpeg-turbo/src, for jpegint.h):
 *
 *   gcc -O2 -I$OUT/include -I$SRC -I$OUT/build -c turbo_two_threads.c -o t2s.o
 *   gcc -O2 -I$OUT/include probe.c t2s.o $OUT/lib/libturbojpeg.a -lpthread -o probe
 *   ./probe photo.jpg 4 41      # file, DCT scale denominator, repetitions
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>
typedef struct hub_t2 hub_t2;
hub_t2 *hub_t2_new(void);
int hub_t2_open(hub_t2 *h, const unsigned char *jpeg, unsigned long len, int denom, unsigned long long max_pixels, unsigned int *width, unsigned int *height, char *message, size_t message_len);
int hub_t2_run(hub_t2 *h, unsigned char *out, size_t pitch, char *message, size_t message_len);
void hub_t2_free(hub_t2 *h);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}
static unsigned char *buf; static long len;
static unsigned char o1[4000*3000*3], o2[4000*3000*3];
int W,H;
double tj(int d){ tjhandle h=tj3Init(TJINIT_DECOMPRESS); double t=now(); tj3Set(h,TJPARAM_STOPONWARNING,1); tj3DecompressHeader(h,buf,len); tjscalingfactor f={1,d}; tj3SetScalingFactor(h,f);
  int w=(tj3Get(h,TJPARAM_JPEGWIDTH)+d-1)/d; if(tj3Decompress8(h,buf,len,o1,w*3,TJPF_RGB)) printf("tj err %s\n",tj3GetErrorStr(h)); t=now()-t; tj3Destroy(h); return t;}
double two(int d){ char m[200]; unsigned w,h; double t=now(); hub_t2*x=hub_t2_new(); int s=hub_t2_open(x,buf,len,d,0,&w,&h,m,200); if(s){printf("open %d %s\n",s,m);} else { s=hub_t2_run(x,o2,w*3,m,200); if(s) printf("run err %s\n",m);} hub_t2_free(x); W=w;H=h; return now()-t;}
int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){FILE*f=fopen(argv[1],"rb");fseek(f,0,2);len=ftell(f);rewind(f);buf=malloc(len);fread(buf,1,len,f);fclose(f);
 int d=atoi(argv[2]); int n=atoi(argv[3]); double a[1000],b[1000];
 for(int i=0;i<n;i++){a[i]=tj(d);b[i]=two(d);}
 printf("%s 1/%d %ux%u identical=%d\n",argv[1],d,W,H,memcmp(o1,o2,(size_t)W*H*3)==0);
 qsort(a,n,8,cmp);qsort(b,n,8,cmp);
 printf("  tj med %.2f min %.2f | two-thread med %.2f min %.2f\n",a[n/2],a[0],b[n/2],b[0]);}
