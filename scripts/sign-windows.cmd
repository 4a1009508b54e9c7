@echo off
rem Test-sign a partyline package folder on Windows with the WDK / Windows SDK tools: sign
rem partyline.sys with signtool, make partyline.cat with inf2cat (after signing the .sys, so the
rem catalog lists the hash of the file that ships), sign the catalog, export partyline-test.cer,
rem and verify both with the kernel-mode policy (signtool verify /kp). The self-signed test
rem certificate lives in the current user's "PrivateCertStore", which is created if missing.
rem For test machines with `bcdedit /set testsigning on` only; see docs/INSTALL.md.
rem Linux: scripts/sign-linux.sh.
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

rem The store, then a code-signing certificate in it (made once), exported as a .cer for the test
rem machine's Trusted Root and Trusted Publishers stores ("How to Test-Sign a Driver Package",
rem "Creating Test Certificates": https://learn.microsoft.com/windows-hardware/drivers/install/creating-test-certificates).
powershell -NoProfile -ExecutionPolicy Bypass -Command ^
  "$ErrorActionPreference = 'Stop';" ^
  "if (-not (Test-Path Cert:\CurrentUser\PrivateCertStore)) { New-Item -Path Cert:\CurrentUser\PrivateCertStore | Out-Null; Write-Host 'created the certificate store CurrentUser\PrivateCertStore' };" ^
  "if (-not (Get-ChildItem Cert:\CurrentUser\PrivateCertStore | Where-Object Subject -eq 'CN=%SUBJECT%')) {" ^
  "  $c = New-SelfSignedCertificate -Type CodeSigningCert -Subject 'CN=%SUBJECT%' -CertStoreLocation Cert:\CurrentUser\My;" ^
  "  Move-Item -Path ('Cert:\CurrentUser\My\' + $c.Thumbprint) -Destination Cert:\CurrentUser\PrivateCertStore };" ^
  "$c = Get-ChildItem Cert:\CurrentUser\PrivateCertStore | Where-Object Subject -eq 'CN=%SUBJECT%' | Select-Object -First 1;" ^
  "Export-Certificate -Cert $c -FilePath '%PKG%\partyline-test.cer' | Out-Null"
if errorlevel 1 exit /b 1

signtool.exe sign /fd sha256 /s PrivateCertStore /n "%SUBJECT%" /ph "%PKG%\partyline.sys"
if errorlevel 1 exit /b 1
inf2cat.exe /driver:"%PKG%" /os:10_X64 /uselocaltime
if errorlevel 1 exit /b 1
signtool.exe sign /fd sha256 /s PrivateCertStore /n "%SUBJECT%" "%PKG%\partyline.cat"
if errorlevel 1 exit /b 1

rem /kp: the kernel-mode driver signing policy; /c: the .sys against the catalog. Both need the
rem test certificate trusted on this machine (Trusted Root Certification Authorities); on a build
rem machine that does not trust it they fail with "terminated in a root certificate which is not
rem trusted" while the signatures are there: trust the .cer (docs/INSTALL.md step 2) to check here.
set "VERIFIED=yes"
signtool.exe verify /kp /v "%PKG%\partyline.sys"
if errorlevel 1 set "VERIFIED=no"
signtool.exe verify /kp /v /c "%PKG%\partyline.cat" "%PKG%\partyline.sys"
if errorlevel 1 set "VERIFIED=no"
if "%VERIFIED%"=="no" (
  echo warning: signtool verify /kp failed: is partyline-test.cer trusted on this machine? ^(docs/INSTALL.md^) 1>&2
  if defined CI exit /b 1
)
echo signed: %PKG%\partyline.sys and %PKG%\partyline.cat (certificate: %PKG%\partyline-test.cer)
exit /b 0
