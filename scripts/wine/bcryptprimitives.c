/*
 * A Wine-only stand-in for bcryptprimitives.dll, which Wine 8.0 (Debian 12) lacks. Rust's std for
 * Windows imports ProcessPrng from it ("ProcessPrng function",
 * https://learn.microsoft.com/windows/win32/seccng/processprng); without the DLL the process dies
 * at load time (exit status 53, nothing printed). Built next to a copy of partyline.exe by
 * scripts/run-under-wine.sh. A test shim: never part of the driver package.
 *
 * ProcessPrng fills the buffer with random bytes and always returns TRUE; RtlGenRandom
 * (SystemFunction036 in advapi32) does the work here.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
