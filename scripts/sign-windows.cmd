@echo off
rem Test-sign the partyline package on Windows with the WDK / Windows SDK tools: make the catalog
rem with inf2cat, then sign partyline.sys and partyline.cat with signtool and a self-signed test
rem certificate kept in the current user's "PrivateCertStore". For test machines with
rem `bcdedit /set testsigning on` only; see docs/INSTALL.md.
rem
rem usage: scripts\sign-windows.cmd <package-dir>
setlocal
set "PKG=%~1"
set "SUBJECT=partyline test signing (not trusted)"
if "%PKG%"=="" (
  echo usage: %~nx0 ^<package-dir^> 1>&2
  exit /b 2
)
if not exist "%PKG%\partyline.sys" (
  echo error: %PKG%\partyline.sys is missing: run `cargo make package` first 1>&2
  exit /b 1
)
where signtool.exe >nul 2>nul
if errorlevel 1 (
  echo error: signtool.exe is not on PATH. Install the WDK ^(it brings the Windows SDK^) and run from a 1>&2
  echo        "Developer Command Prompt", or add "%%ProgramFiles(x86)%%\Windows Kits\10\bin\^<version^>\x64" to PATH. 1>&2
  exit /b 1
)
where inf2cat.exe >nul 2>nul
if errorlevel 1 (
  echo error: inf2cat.exe is not on PATH. It comes with the WDK: add 1>&2
  echo        "%%ProgramFiles(x86)%%\Windows Kits\10\bin\^<version^>\x86" to PATH. 1>&2
  exit /b 1
)

rem A code-signing certificate in CurrentUser\PrivateCertStore, made once, exported as a .cer for
rem the test machine's Trusted Root and Trusted Publishers stores.
powershell -NoProfile -Command ^
  "if (-not (Get-ChildItem Cert:\CurrentUser\PrivateCertStore -ErrorAction SilentlyContinue | Where-Object Subject -eq 'CN=%SUBJECT%')) {" ^
  "  $c = New-SelfSignedCertificate -Type CodeSigningCert -Subject 'CN=%SUBJECT%' -CertStoreLocation Cert:\CurrentUser\My;" ^
  "  Move-Item -Path ('Cert:\CurrentUser\My\' + $c.Thumbprint) -Destination Cert:\CurrentUser\PrivateCertStore };" ^
  "$c = Get-ChildItem Cert:\CurrentUser\PrivateCertStore | Where-Object Subject -eq 'CN=%SUBJECT%' | Select-Object -First 1;" ^
  "Export-Certificate -Cert $c -FilePath '%PKG%\partyline-test.cer' | Out-Null"
if errorlevel 1 exit /b 1

inf2cat.exe /driver:"%PKG%" /os:10_X64 /uselocaltime
if errorlevel 1 exit /b 1
signtool.exe sign /fd sha256 /s PrivateCertStore /n "%SUBJECT%" /ph "%PKG%\partyline.sys" "%PKG%\partyline.cat"
if errorlevel 1 exit /b 1
signtool.exe verify /pa /v "%PKG%\partyline.sys"
rem verify fails on a build machine that does not trust the test root; the signature is still there.
echo signed: %PKG%\partyline.sys and %PKG%\partyline.cat (certificate: %PKG%\partyline-test.cer)
exit /b 0
